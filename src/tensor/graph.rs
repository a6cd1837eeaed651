//! Reverse-mode differentiation over the recorded graph.
//!
//! The whole algorithm: sort the nodes that lead to the outputs topologically (inputs before
//! the ops that use them), seed the outputs' gradients, then visit the nodes from the outputs
//! back, handing each node's gradient to its op's vector-Jacobian product, which adds its share
//! into the gradients of the op's inputs.

use super::elem::Element;
use super::{kernels, Tensor};
use ndarray::ArrayView2;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Node ids are addresses, already well spread: hashing them again (SipHash) is wasted work
/// on every backward pass.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Addresses are multiples of 8 or more; mix the high bits down.
        self.0 ^ (self.0 >> 17)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

type IdMap<V> = HashMap<usize, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<usize, BuildHasherDefault<IdHasher>>;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops currently record the graph (true unless inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous gradient mode when dropped.
#[must_use = "the mode is restored when the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

fn set_grad_mode(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// Stops recording until the guard is dropped (PyTorch's `torch.no_grad()`): for inference
/// and for updating parameters.
///
/// ```
/// use ferrograd::{no_grad, Tensor};
/// let w = Tensor::<f32>::ones(&[2]).with_grad();
/// let y = {
///     let _guard = no_grad();
///     &w * &w
/// };
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad() -> GradModeGuard {
    set_grad_mode(false)
}

/// Records again until the guard is dropped, even inside [`no_grad`].
pub fn enable_grad() -> GradModeGuard {
    set_grad_mode(true)
}

/// A leaf's gradient `xᵀ·dz` offered whole, before it is formed (`x` the batch, `dz` the
/// gradient of a linear layer's output), to a handler that may apply it without forming it;
/// `true` when it did.
pub(crate) type ProductHandler<'a, T> =
    &'a mut dyn FnMut(&Tensor<T>, &ArrayView2<T>, &ArrayView2<T>) -> bool;

/// The nodes that lead to `roots` and require a gradient, inputs before outputs, and — when
/// `count_uses`, for a pass that may apply a gradient unformed — how many times each is an
/// input of an op among them (empty otherwise: other passes do not pay for the map).
fn topological_order<T: Element>(
    roots: &[Tensor<T>],
    count_uses: bool,
) -> (Vec<Tensor<T>>, IdMap<usize>) {
    let mut order = Vec::new();
    let mut uses = IdMap::default();
    let mut seen = IdSet::default();
    // Iterative depth-first search: (node, whether its inputs have been pushed).
    let mut stack: Vec<(Tensor<T>, bool)> = roots
        .iter()
        .filter(|r| r.requires_grad())
        .map(|r| (r.clone(), false))
        .collect();
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !seen.insert(node.id()) {
            continue;
        }
        stack.push((node.clone(), true));
        if let Some(op) = &node.0.op {
            op.for_each_input(|input| {
                if input.requires_grad() {
                    if count_uses {
                        *uses.entry(input.id()).or_insert(0) += 1;
                    }
                    if !seen.contains(&input.id()) {
                        stack.push((input.clone(), false));
                    }
                }
            });
        }
    }
    (order, uses)
}

/// `current + extra`. `current` is handed over by value: when no graph of the gradient is
/// being built and nobody else holds it, the sum is made in its buffer; otherwise as a
/// (possibly recorded) new tensor.
fn accumulate<T: Element>(mut current: Tensor<T>, extra: &Tensor<T>, in_place: bool) -> Tensor<T> {
    if in_place && current.value().shape() == extra.value().shape() {
        if let Some(v) = current.value_mut_if_unique() {
            let _p = crate::profile::scope("accumulate");
            kernels::add_assign(v.view_mut(), &extra.value().view());
            return current;
        }
    }
    // Counted by `add`'s own profiler scope, not twice.
    current.add(extra)
}

/// Runs the backward pass from `roots` seeded with `seeds`; hands `found` the complete gradient
/// of each node in `wanted` (or, when `wanted` is `None`, of each leaf that requires one) as
/// soon as it is complete — every op that uses the node has run its backward by then.
fn run_backward<T: Element>(
    roots: &[Tensor<T>],
    seeds: Vec<Tensor<T>>,
    wanted: Option<&IdSet>,
    create_graph: bool,
    found: &mut dyn FnMut(&Tensor<T>, Tensor<T>),
    mut products: Option<ProductHandler<T>>,
) {
    let _mode = set_grad_mode(create_graph);
    let (order, uses) = topological_order(roots, products.is_some());
    let grads: RefCell<IdMap<Tensor<T>>> = RefCell::new(IdMap::with_capacity_and_hasher(
        order.len(),
        Default::default(),
    ));
    let mut grads_now = grads.borrow_mut();
    for (root, seed) in roots.iter().zip(seeds) {
        if !root.requires_grad() {
            continue;
        }
        let g = match grads_now.remove(&root.id()) {
            Some(prev) => accumulate(prev, &seed, !create_graph),
            None => seed,
        };
        grads_now.insert(root.id(), g);
    }
    drop(grads_now);
    for node in order.iter().rev() {
        let Some(g) = grads.borrow_mut().remove(&node.id()) else {
            continue;
        };
        let is_wanted = match wanted {
            Some(w) => w.contains(&node.id()),
            None => node.is_leaf(),
        };
        // A wanted gradient goes to `found` too, so the rule gets a second handle to it and
        // cannot reuse its buffer; any other gradient is the rule's to reuse.
        let (for_rule, kept) = if is_wanted {
            (g.clone(), Some(g))
        } else {
            (g, None)
        };
        if let Some(op) = &node.0.op {
            // Only a leaf's whole gradient may be applied unformed: one use in the graph, no
            // share of it from elsewhere, nothing already in `.grad`, and no one asking for it.
            let mut offer = |w: &Tensor<T>, x: &ArrayView2<T>, dz: &ArrayView2<T>| {
                wanted.is_none()
                    && w.is_leaf()
                    && uses.get(&w.id()) == Some(&1)
                    && !grads.borrow().contains_key(&w.id())
                    && w.grad().is_none()
                    && products.as_mut().is_some_and(|p| p(w, x, dz))
            };
            op.backward(
                node,
                for_rule,
                &mut |input, gi| {
                    assert!(
                        gi.value().shape() == input.value().shape(),
                        "backward of {}: gradient shape {:?} differs from its input's {:?}",
                        op.name(),
                        gi.shape(),
                        input.shape()
                    );
                    let mut grads = grads.borrow_mut();
                    let total = match grads.remove(&input.id()) {
                        Some(prev) => accumulate(prev, &gi, !create_graph),
                        None => gi,
                    };
                    grads.insert(input.id(), total);
                },
                &mut offer,
            );
        }
        if let Some(g) = kept {
            found(node, g);
        }
    }
}

fn default_seed<T: Element>(op: &str, output: &Tensor<T>) -> Tensor<T> {
    assert_eq!(
        output.len(),
        1,
        "{op}: a gradient can be created implicitly only for a one-element output, got shape {:?}; pass the output's gradient explicitly",
        output.shape()
    );
    Tensor::ones(&output.shape())
}

impl<T: Element> Tensor<T> {
    /// Computes the gradient of this one-element tensor with respect to every leaf that
    /// requires one, and adds it into the leaves' [`grad`](Tensor::grad) (PyTorch semantics:
    /// gradients accumulate across calls until [`zero_grad`](Tensor::zero_grad)).
    ///
    /// # Panics
    /// When the tensor has more than one element (use
    /// [`backward_with`](Tensor::backward_with) to give the output's gradient).
    ///
    /// ```
    /// use ferrograd::Tensor;
    /// let x = Tensor::<f64>::scalar(3.0).with_grad();
    /// let y = &x * &x;
    /// y.backward();
    /// y.backward(); // accumulates
    /// assert_eq!(x.grad().unwrap().item(), 12.0);
    /// ```
    pub fn backward(&self) {
        let seed = default_seed("backward", self);
        self.backward_with(&seed, false);
    }

    /// Like [`backward`](Tensor::backward) with an explicit output gradient (same shape as
    /// `self`). With `create_graph` the accumulated gradients carry a graph of their own, so
    /// they can be differentiated again.
    ///
    /// # Panics
    /// When `grad`'s shape differs from `self`'s.
    pub fn backward_with(&self, grad: &Tensor<T>, create_graph: bool) {
        self.backward_then(grad, create_graph, &mut |_| {});
    }

    /// Like [`backward_with`](Tensor::backward_with), calling `on_leaf(leaf)` as soon as a
    /// leaf's gradient is complete and stored in its `.grad` — while the rest of the backward
    /// pass is still to run, and while that gradient is still in the cache. An optimiser can
    /// update the leaf there: every op that reads it has already run its backward.
    pub fn backward_then(
        &self,
        grad: &Tensor<T>,
        create_graph: bool,
        on_leaf: &mut dyn FnMut(&Tensor<T>),
    ) {
        self.backward_applying(grad, create_graph, on_leaf, None);
    }

    /// [`backward_then`](Tensor::backward_then), and a leaf whose whole gradient is one
    /// linear layer's `xᵀ·dz` is first offered to `products` as `(leaf, x, dz)`: when that
    /// applies it (an optimiser's step straight from the product), the gradient is never
    /// formed, `.grad` stays empty and `on_leaf` is not called for the leaf.
    pub(crate) fn backward_applying(
        &self,
        grad: &Tensor<T>,
        create_graph: bool,
        on_leaf: &mut dyn FnMut(&Tensor<T>),
        products: Option<ProductHandler<T>>,
    ) {
        assert_eq!(
            grad.shape(),
            self.shape(),
            "backward_then: gradient shape differs from the output's"
        );
        run_backward(
            std::slice::from_ref(self),
            vec![grad.clone()],
            None,
            create_graph,
            &mut |leaf, g| {
                // Taken out of the slot, so it is summed in place only if the user holds
                // no handle to the earlier gradient.
                let previous = leaf.0.grad.borrow_mut().take();
                let total = match previous {
                    Some(prev) => accumulate(prev, &g, !create_graph),
                    None => g,
                };
                leaf.set_grad(Some(total));
                on_leaf(leaf);
            },
            products,
        );
    }
}

/// The gradients of `outputs` with respect to `inputs`, returned rather than accumulated
/// (`.grad` is left alone), like `torch.autograd.grad`.
///
/// `grad_outputs` gives the gradient of each output (`None`: ones, which needs one-element
/// outputs). With `create_graph` the returned gradients are themselves differentiable, which is
/// how second derivatives and Hessian-vector products are taken. An input that the outputs do
/// not depend on gets a zero gradient.
///
/// ```
/// use ferrograd::{grad, Tensor};
/// let x = Tensor::<f64>::scalar(2.0).with_grad();
/// let y = x.powf(3.0); // y = x³
/// let dy = &grad(&[y], &[x.clone()], None, true)[0]; // 3x² = 12
/// let d2y = &grad(&[dy.clone()], &[x], None, false)[0]; // 6x = 12
/// assert_eq!((dy.item(), d2y.item()), (12.0, 12.0));
/// ```
///
/// # Panics
/// When `grad_outputs` does not match `outputs` in number or shapes, or when it is `None` and
/// an output has more than one element.
pub fn grad<T: Element>(
    outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    grad_outputs: Option<&[Tensor<T>]>,
    create_graph: bool,
) -> Vec<Tensor<T>> {
    let seeds: Vec<Tensor<T>> = match grad_outputs {
        Some(gs) => {
            assert_eq!(gs.len(), outputs.len(), "grad: one gradient per output");
            for (g, o) in gs.iter().zip(outputs) {
                assert_eq!(
                    g.shape(),
                    o.shape(),
                    "grad: output gradient shape differs from the output's"
                );
            }
            gs.to_vec()
        }
        None => outputs.iter().map(|o| default_seed("grad", o)).collect(),
    };
    let wanted: IdSet = inputs.iter().map(|t| t.id()).collect();
    let mut found: IdMap<Tensor<T>> = IdMap::default();
    run_backward(
        outputs,
        seeds,
        Some(&wanted),
        create_graph,
        &mut |node, g| {
            found.insert(node.id(), g);
        },
        None,
    );
    inputs
        .iter()
        .map(|x| match found.get(&x.id()) {
            Some(g) => g.clone(),
            None => Tensor::zeros(&x.shape()),
        })
        .collect()
}
