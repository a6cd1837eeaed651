//! Derivatives as functions: Hessian-vector and Jacobian-vector products, Jacobians and Hessians
//! of small inputs.

use super::elem::Element;
use super::graph::{enable_grad, grad};
use super::Tensor;
use ndarray::{Array2, ArrayD, IxDyn};

/// The Hessian-vector product `H·v` of the scalar `loss_fn(params)`, exactly, by double
/// backward: the gradient `g(θ)` is built with a graph, and `H·v = ∇θ (g(θ) · v)`.
///
/// `params` must require gradients; `v` has one tensor per parameter, of the same shape.
/// Costs about two gradient evaluations.
///
/// ```
/// use ferrograd::{hvp, Tensor};
/// // f(x) = x₀² x₁, H = [[2x₁, 2x₀], [2x₀, 0]]; at x = (1, 2), H·(1, 0) = (4, 2).
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]).with_grad();
/// let f = |p: &[Tensor<f64>]| {
///     let x0 = p[0].slice(0, 0, 1);
///     let x1 = p[0].slice(0, 1, 2);
///     (&(&x0 * &x0) * &x1).sum()
/// };
/// let v = Tensor::from_vec(vec![1.0, 0.0], &[2]);
/// let hv = hvp(f, &[x], &[v]);
/// assert_eq!(hv[0].to_vec(), vec![4.0, 2.0]);
/// ```
///
/// # Panics
/// When `v` does not match `params` in number or shapes, or `loss_fn` is not scalar.
pub fn hvp<T: Element>(
    loss_fn: impl FnOnce(&[Tensor<T>]) -> Tensor<T>,
    params: &[Tensor<T>],
    v: &[Tensor<T>],
) -> Vec<Tensor<T>> {
    assert_eq!(params.len(), v.len(), "hvp: one direction per parameter");
    let _mode = enable_grad();
    let loss = loss_fn(params);
    let grads = grad(std::slice::from_ref(&loss), params, None, true);
    hvp_from_grads(&grads, params, v)
}

/// `H·v` from gradients already built with `create_graph` (reuse them for many `v`s).
pub fn hvp_from_grads<T: Element>(
    grads: &[Tensor<T>],
    params: &[Tensor<T>],
    v: &[Tensor<T>],
) -> Vec<Tensor<T>> {
    let _mode = enable_grad();
    let mut dot: Option<Tensor<T>> = None;
    for (g, vi) in grads.iter().zip(v) {
        assert_eq!(
            g.shape(),
            vi.shape(),
            "hvp: direction shape differs from parameter's"
        );
        let term = (g * vi).sum();
        dot = Some(match dot {
            Some(d) => d + term,
            None => term,
        });
    }
    match dot {
        Some(d) if d.requires_grad() => grad(&[d], params, None, false),
        // The gradient does not depend on the parameters: the Hessian is zero.
        _ => params.iter().map(|p| Tensor::zeros(&p.shape())).collect(),
    }
}

/// The Jacobian of `f` at `x`: shape `f(x).shape ++ x.shape`, one backward pass per output
/// element. For small inputs (checks and teaching), not for training.
pub fn jacobian<T: Element>(f: impl Fn(&Tensor<T>) -> Tensor<T>, x: &Tensor<T>) -> ArrayD<T> {
    let _mode = enable_grad();
    let x = x.detach().with_grad();
    let y = f(&x);
    let (ys, xs) = (y.shape(), x.shape());
    let mut rows = Array2::<T>::zeros((y.len(), x.len()));
    for i in 0..y.len() {
        let mut seed = ArrayD::<T>::zeros(IxDyn(&ys));
        seed.as_slice_mut().unwrap()[i] = T::one();
        let g = &grad(
            std::slice::from_ref(&y),
            std::slice::from_ref(&x),
            Some(&[Tensor::from_array(seed)]),
            false,
        )[0];
        for (dst, src) in rows.row_mut(i).iter_mut().zip(g.value().iter()) {
            *dst = *src;
        }
    }
    let shape: Vec<usize> = ys.iter().chain(xs.iter()).copied().collect();
    rows.into_shape_with_order(IxDyn(&shape)).unwrap()
}

/// The Hessian of a scalar `f` at `x`, shape `x.shape ++ x.shape`, assembled column by column
/// from Hessian-vector products. For small inputs.
pub fn hessian<T: Element>(f: impl Fn(&Tensor<T>) -> Tensor<T>, x: &Tensor<T>) -> ArrayD<T> {
    let _mode = enable_grad();
    let x = x.detach().with_grad();
    let y = f(&x);
    let grads = grad(
        std::slice::from_ref(&y),
        std::slice::from_ref(&x),
        None,
        true,
    );
    let n = x.len();
    let xs = x.shape();
    let mut h = Array2::<T>::zeros((n, n));
    for j in 0..n {
        let mut e = ArrayD::<T>::zeros(IxDyn(&xs));
        e.as_slice_mut().unwrap()[j] = T::one();
        let col = &hvp_from_grads(&grads, std::slice::from_ref(&x), &[Tensor::from_array(e)])[0];
        for (i, v) in col.value().iter().enumerate() {
            h[[i, j]] = *v;
        }
    }
    let shape: Vec<usize> = xs.iter().chain(xs.iter()).copied().collect();
    h.into_shape_with_order(IxDyn(&shape)).unwrap()
}

/// The Jacobian `J` of one output with respect to some inputs, kept as an operator: `J·t`
/// (forward mode) and `Jᵀ·w` (reverse mode) without ever forming `J`.
///
/// `J·t` is computed by the double-vjp construction rather than by a native forward mode: with a
/// dummy cotangent `u` (a leaf of the output's shape), `g(u) = Jᵀu` is built once with its graph
/// (`create_graph`), and since `g` is linear in `u`, `J·t = ∇ᵤ (g(u) · t)`. This reuses the
/// double-backward rules every op already has and is tested for, so no op needs a second,
/// tangent rule that could disagree with its backward rule; the price is one extra backward pass
/// (a product costs about two backward passes through the graph instead of one forward pass).
pub struct JacobianOperator<T: Element> {
    inputs: Vec<Tensor<T>>,
    output: Tensor<T>,
    cotangent: Tensor<T>,
    transposed: Vec<Tensor<T>>,
}

impl<T: Element> JacobianOperator<T> {
    /// The Jacobian of `output` (built with gradients enabled) with respect to `inputs` (which
    /// require gradients), at the values they hold now.
    pub fn new(output: &Tensor<T>, inputs: &[Tensor<T>]) -> Self {
        let _mode = enable_grad();
        let cotangent = Tensor::<T>::zeros(&output.shape()).with_grad();
        let transposed = grad(
            std::slice::from_ref(output),
            inputs,
            Some(std::slice::from_ref(&cotangent)),
            true,
        );
        JacobianOperator {
            inputs: inputs.to_vec(),
            output: output.clone(),
            cotangent,
            transposed,
        }
    }

    /// `J·t`, shaped like the output; `tangents` has one tensor per input, of its shape.
    ///
    /// # Panics
    /// When `tangents` does not match the inputs in number or shapes.
    pub fn jvp(&self, tangents: &[Tensor<T>]) -> Tensor<T> {
        assert_eq!(
            self.inputs.len(),
            tangents.len(),
            "jvp: one tangent per input"
        );
        for (x, t) in self.inputs.iter().zip(tangents) {
            assert_eq!(
                x.shape(),
                t.shape(),
                "jvp: tangent shape differs from its input's"
            );
        }
        // `hvp_from_grads` differentiates Σ gᵢ·tᵢ with respect to its "parameters": here the
        // cotangent, so it returns ∇ᵤ (Jᵀu · t) = J·t.
        hvp_from_grads(
            &self.transposed,
            std::slice::from_ref(&self.cotangent),
            tangents,
        )
        .remove(0)
    }

    /// `Jᵀ·w`, one tensor per input; `w` has the output's shape.
    pub fn vjp(&self, w: &Tensor<T>) -> Vec<Tensor<T>> {
        grad(
            std::slice::from_ref(&self.output),
            &self.inputs,
            Some(std::slice::from_ref(w)),
            false,
        )
    }
}

/// The Jacobian-vector product of `f` at `inputs` along `tangents`: `(f(inputs), J·t)`, exactly
/// (forward-mode derivative; see [`JacobianOperator`] for how it is computed and why).
///
/// `f` receives fresh leaves holding the inputs' values, so the inputs need not require
/// gradients; `tangents` has one tensor per input, of the same shape.
///
/// ```
/// use ferrograd::{jvp, Tensor};
/// // f(x) = x², J = diag(2x); at x = (1, 2, 3) along t = (1, 0, −1): J·t = (2, 0, −6).
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
/// let t = Tensor::from_vec(vec![1.0, 0.0, -1.0], &[3]);
/// let (y, jt) = jvp(|p| p[0].square(), &[x], &[t]);
/// assert_eq!(y.to_vec(), vec![1.0, 4.0, 9.0]);
/// assert_eq!(jt.to_vec(), vec![2.0, 0.0, -6.0]);
/// ```
///
/// # Panics
/// When `tangents` does not match `inputs` in number or shapes.
pub fn jvp<T: Element>(
    f: impl FnOnce(&[Tensor<T>]) -> Tensor<T>,
    inputs: &[Tensor<T>],
    tangents: &[Tensor<T>],
) -> (Tensor<T>, Tensor<T>) {
    assert_eq!(inputs.len(), tangents.len(), "jvp: one tangent per input");
    let _mode = enable_grad();
    let leaves: Vec<Tensor<T>> = inputs.iter().map(|x| x.detach().with_grad()).collect();
    let y = f(&leaves);
    let jt = JacobianOperator::new(&y, &leaves).jvp(tangents);
    (y.detach(), jt)
}
