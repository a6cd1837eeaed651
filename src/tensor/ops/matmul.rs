//! Matrix products, lowered to GEMM (`matrixmultiply` by default, OpenBLAS's `sgemm`/`dgemm`
//! with `--features openblas`).
//!
//! Transposed operands are strided views of the same buffer; ndarray hands them to GEMM with a
//! transpose flag (BLAS) or as strides (matrixmultiply), so backward never copies a matrix.

use super::activation::{Activation, Function, Visit};
use super::elementwise::MapActivation;
use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::kernels::{self, Cost};
use crate::tensor::{Tensor, Value};
use ndarray::{Array2, ArrayD, ArrayView2, Ix2, Zip};

/// ∂L/∂z of `out = act(z)`, `z = x·W + b`, given `g = ∂L/∂out`: the activation's own rule
/// (its file under `activation/`). A rule that reads only the output gets none of `z`; one
/// that needs `z` gets the kept pre-activation as a constant in a plain backward pass, and
/// `z` rebuilt as a recorded op when the gradient's own graph is recorded (double backward
/// must differentiate through it). `g` comes by value, so ReLU's mask can reuse its buffer.
pub(super) fn activation_backward<T: Element>(
    act: Option<Activation>,
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    pre: Option<&Value<T>>,
    out: &Tensor<T>,
    g: Tensor<T>,
) -> Tensor<T> {
    match act {
        None => g,
        Some(act) if act.from_output() => act.backward(None, out, g),
        Some(act) => {
            let z = if crate::is_grad_enabled() {
                x.linear(w, b)
            } else {
                let pre = pre.expect("linear: a pre-activation is kept for this activation");
                Tensor::from_shared(pre.clone())
            };
            act.backward(Some(&z), out, g)
        }
    }
}

fn view2<'a, T: Element>(op: &str, v: &'a crate::tensor::Value<T>) -> ArrayView2<'a, T> {
    v.view()
        .into_dimensionality::<Ix2>()
        .unwrap_or_else(|_| panic!("{op}: expected a 2-D tensor, got shape {:?}", v.shape()))
}

impl<T: Element> Tensor<T> {
    /// The matrix product, with NumPy's rules for 1-D operands: a 1-D left operand is a row
    /// vector, a 1-D right operand a column vector, and the added axis is removed from the
    /// result (so 1-D · 1-D is the dot product, a 0-D tensor).
    ///
    /// # Panics
    /// When an operand has more than two dimensions or the inner dimensions differ.
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        // Borrowed shapes: this runs on every layer of every step.
        let (va, vb) = (self.value(), other.value());
        let (sa, sb) = (va.shape(), vb.shape());
        assert!(
            (1..=2).contains(&sa.len()) && (1..=2).contains(&sb.len()),
            "matmul: operands must be 1-D or 2-D, got shapes {sa:?} and {sb:?}"
        );
        let k_a = *sa.last().unwrap();
        let k_b = sb[0];
        assert_eq!(
            k_a, k_b,
            "matmul: inner dimensions differ for shapes {sa:?} and {sb:?}"
        );
        match (sa.len(), sb.len()) {
            (2, 2) => self.matmul2(other),
            (1, 2) => self.reshape(&[1, k_a]).matmul2(other).reshape(&[sb[1]]),
            (2, 1) => self.matmul2(&other.reshape(&[k_b, 1])).reshape(&[sa[0]]),
            _ => self
                .reshape(&[1, k_a])
                .matmul2(&other.reshape(&[k_b, 1]))
                .reshape(&[]),
        }
    }

    fn matmul2(&self, other: &Tensor<T>) -> Tensor<T> {
        let value = {
            let (a, b) = (self.value(), other.value());
            let _p = crate::profile::gemm_scope("matmul", a.shape()[0], a.shape()[1], b.shape()[1]);
            kernels::gemm(&view2("matmul", &a), &view2("matmul", &b))
        };
        Tensor::from_op(
            value.into_dyn(),
            Op::MatMul {
                a: self.clone(),
                b: other.clone(),
            },
        )
    }

    /// The transpose of a 2-D tensor (a view: no data is copied).
    ///
    /// # Panics
    /// When the tensor is not 2-D.
    pub fn t(&self) -> Tensor<T> {
        assert_eq!(
            self.ndim(),
            2,
            "t: expected a 2-D tensor, got shape {:?}",
            self.shape()
        );
        self.permute(&[1, 0])
    }

    /// The affine map `x·W + b` of a batch `x` (N × in) with weights `W` (in × out) and an
    /// optional bias `b` (out), as one op: one GEMM forward, and in backward `G·Wᵀ`, `Xᵀ·G`
    /// and the column sums of `G`, each computed only when its input needs a gradient.
    ///
    /// # Panics
    /// When the shapes do not fit.
    pub fn linear(&self, w: &Tensor<T>, b: Option<&Tensor<T>>) -> Tensor<T> {
        self.affine(w, b, None)
    }

    /// `act(x·W + b)` as one op: the bias and the activation are applied in the same pass
    /// over the GEMM's output, and backward takes the activation's derivative from the
    /// output, so a layer keeps one array alive instead of two.
    ///
    /// # Panics
    /// When the shapes do not fit.
    pub fn linear_act(&self, w: &Tensor<T>, b: Option<&Tensor<T>>, act: Activation) -> Tensor<T> {
        self.affine(w, b, Some(act))
    }

    fn affine(&self, w: &Tensor<T>, b: Option<&Tensor<T>>, act: Option<Activation>) -> Tensor<T> {
        let (value, pre) = {
            let (xv, wv) = (self.value(), w.value());
            let (x2, w2) = (view2("linear", &xv), view2("linear", &wv));
            let _p = crate::profile::gemm_scope("linear", x2.nrows(), x2.ncols(), w2.ncols());
            assert_eq!(
                x2.ncols(),
                w2.nrows(),
                "linear: input of shape {:?} does not fit weights of shape {:?}",
                xv.shape(),
                wv.shape()
            );
            let out = kernels::gemm(&x2, &w2);
            if let Some(b) = b {
                let bv = b.value();
                assert_eq!(
                    bv.shape(),
                    &[w2.ncols()],
                    "linear: bias of shape {:?} does not fit weights of shape {:?}",
                    bv.shape(),
                    wv.shape()
                );
                let bias = bv
                    .view()
                    .into_dimensionality::<ndarray::Ix1>()
                    .unwrap()
                    .insert_axis(ndarray::Axis(0));
                bias_and_activation(out, Some(bias), act)
            } else {
                bias_and_activation(out, None, act)
            }
        };
        Tensor::from_op(
            value,
            Op::Linear {
                x: self.clone(),
                w: w.clone(),
                b: b.cloned(),
                act,
                pre,
            },
        )
    }
}

/// The gradients of `z = x·W + b` from `dz` as plain arrays: `dz·Wᵀ`, `xᵀ·dz` and the column
/// sums of `dz`, each handed to `give` (which computes it only for an input that needs it).
/// The same GEMMs and the same blocked sum as the tensor formulas, so the same bits.
pub(super) fn linear_backward_arrays<T: Element>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    dz: &Tensor<T>,
    give: &mut impl FnMut(&Tensor<T>, &dyn Fn() -> Tensor<T>),
    offer: crate::tensor::graph::ProductHandler<'_, T>,
) {
    let dzv = dz.value();
    let dz2 = view2("linear", &dzv);
    give(x, &|| {
        let wv = w.value();
        let wt = view2("linear", &wv).reversed_axes();
        let _p = crate::profile::gemm_scope("matmul", dz2.nrows(), dz2.ncols(), wt.ncols());
        Tensor::from_array(kernels::gemm(&dz2, &wt))
    });
    // The weights' gradient is offered unformed first (an optimiser may apply it straight
    // from the product); `x`'s gradient above has already read the weights.
    let taken = w.requires_grad() && {
        let xv = x.value();
        offer(w, &view2("linear", &xv), &dz2)
    };
    if !taken {
        give(w, &|| {
            let xv = x.value();
            let xt = view2("linear", &xv).reversed_axes();
            let _p = crate::profile::gemm_scope("matmul", xt.nrows(), xt.ncols(), dz2.ncols());
            Tensor::from_array(kernels::gemm(&xt, &dz2))
        });
    }
    if let Some(b) = b {
        give(b, &|| {
            let _p = crate::profile::scope("sum_to");
            Tensor::from_array(kernels::column_sums(&dz2))
        });
    }
}

/// `act(out + bias)`, in one pass over the GEMM's output (parallel above the kernels'
/// thresholds), with the activation's own scalar function (so fused and unfused agree bit for
/// bit). Returns the value and, for an activation whose derivative needs it, the
/// pre-activation `out + bias`: then the sum is kept as it is (no copy) and the activation
/// maps it into the one new array.
fn bias_and_activation<T: Element>(
    mut out: Array2<T>,
    bias: Option<ArrayView2<T>>,
    act: Option<Activation>,
) -> (ArrayD<T>, Option<Value<T>>) {
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None if act.is_none() => return (out.into_dyn(), None),
        None => {
            zeros = Array2::<T>::zeros((1, out.ncols()));
            zeros.view()
        }
    };
    match act {
        Some(act) if act.from_output() => {
            act.visit(BiasApply(&mut out, &bias));
            (out.into_dyn(), None)
        }
        Some(act) => {
            zip_bias(&mut out, &bias, Cost::Cheap, |z| z);
            let pre = out.into_dyn().into_shared();
            (act.visit(MapActivation(&pre.view())), Some(pre))
        }
        None => {
            zip_bias(&mut out, &bias, Cost::Cheap, |z| z);
            (out.into_dyn(), None)
        }
    }
}

/// `out ← f(out + bias)`, monomorphised for the activation `F`.
struct BiasApply<'a, 'b, 'c, T>(&'a mut Array2<T>, &'b ArrayView2<'c, T>);

impl<T: Element> Visit for BiasApply<'_, '_, '_, T> {
    type Output = ();
    fn visit<F: Function>(self) {
        zip_bias(self.0, self.1, F::COST, F::value)
    }
}

fn zip_bias<T: Element>(
    out: &mut ndarray::Array2<T>,
    bias: &ArrayView2<T>,
    cost: Cost,
    f: impl Fn(T) -> T + Sync + Send,
) {
    let z = Zip::from(out).and_broadcast(bias);
    if kernels::is_parallel(cost, z.size()) {
        z.par_for_each(|o, &c| *o = f(*o + c));
    } else {
        z.for_each(|o, &c| *o = f(*o + c));
    }
}
