//! The engine: [`Tensor`], the ops that build a graph, and reverse-mode differentiation.
//!
//! A tensor is a reference-counted node holding a value (an `ndarray` array), an optional
//! accumulated gradient, a `requires_grad` flag, and the [`Op`](ops) that produced it. Ops
//! record themselves only when gradients are enabled and an input requires one, so inference
//! and the backward pass itself (unless a graph of the gradient is asked for) build nothing.

pub mod catalogue;
pub mod check;
pub mod check_report;
pub mod elem;
pub mod functional;
pub mod graph;
pub mod kernels;
pub mod ops;
pub mod pool;
mod shape;
pub mod short_k;
pub mod split;

use elem::Element;
use ndarray::{ArcArray, ArrayD, ArrayViewMutD, Dimension, IxDyn};
use ops::Op;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};
pub use shape::Shape;
use std::cell::{Cell, Ref, RefCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::rc::Rc;

/// A shared, copy-on-write n-dimensional array: the value of a tensor.
///
/// Cloning is a reference-count increment, and a transposed or broadcast tensor is a strided
/// view of the same buffer, so ops can hand views to GEMM without copying.
pub type Value<T> = ArcArray<T, IxDyn>;

/// An n-dimensional array that remembers how it was computed, so that gradients can flow back.
///
/// `Tensor` has reference semantics like PyTorch's: `clone()` gives another handle to the same
/// node. Arithmetic broadcasts like NumPy.
///
/// ```
/// use ferrograd::Tensor;
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3]).with_grad();
/// let y = (&x * &x).sum(); // y = Σ x²
/// y.backward();
/// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]); // dy/dx = 2x
/// ```
pub struct Tensor<T: Element = f32>(pub(crate) Rc<Node<T>>);

pub(crate) struct Node<T: Element> {
    // Taken out in `drop` to hand the buffer to the pool.
    value: ManuallyDrop<RefCell<Value<T>>>,
    grad: RefCell<Option<Tensor<T>>>,
    requires_grad: Cell<bool>,
    pub(crate) op: Option<Op<T>>,
}

impl<T: Element> Drop for Node<T> {
    fn drop(&mut self) {
        // SAFETY: `value` is not touched again; this is the only place it is dropped.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        pool::recycle(value.into_inner());
        if let Some(op) = self.op.take() {
            release_graph(op);
        }
    }
}

/// Drops a graph without recursing: left to itself, dropping the last handle on a chain of N
/// recorded ops drops N nested nodes, and a chain as long as a user's loop overflows the stack.
/// Each input this drop would free gives up its own op to a loop here first, so the node itself
/// then drops with no graph behind it.
fn release_graph<T: Element>(op: Op<T>) {
    let mut freed_here = false;
    op.for_each_input(|x| freed_here |= Rc::strong_count(&x.0) == 1);
    if !freed_here {
        return; // Every input outlives this op: nothing below it is dropped now.
    }
    let mut pending: Vec<Tensor<T>> = Vec::new();
    op.for_each_input(|x| pending.push(x.clone()));
    drop(op);
    while let Some(mut t) = pending.pop() {
        if let Some(node) = Rc::get_mut(&mut t.0) {
            if let Some(op) = node.op.take() {
                op.for_each_input(|x| pending.push(x.clone()));
            }
            if let Some(g) = node.grad.get_mut().take() {
                pending.push(g);
            }
        }
    }
}

impl<T: Element> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor(Rc::clone(&self.0))
    }
}

impl<T: Element> Tensor<T> {
    fn leaf(value: Value<T>) -> Self {
        Tensor(Rc::new(Node {
            value: ManuallyDrop::new(RefCell::new(value)),
            grad: RefCell::new(None),
            requires_grad: Cell::new(false),
            op: None,
        }))
    }

    /// The result of an op: records `op` only when gradients are enabled and one of its
    /// inputs requires a gradient; otherwise the inputs are released at once.
    pub(crate) fn from_op(value: ArrayD<T>, op: Op<T>) -> Self {
        Self::from_op_shared(value.into_shared(), op)
    }

    pub(crate) fn from_op_shared(value: Value<T>, op: Op<T>) -> Self {
        if graph::is_grad_enabled() && op.any_input_requires_grad() {
            Tensor(Rc::new(Node {
                value: ManuallyDrop::new(RefCell::new(value)),
                grad: RefCell::new(None),
                requires_grad: Cell::new(true),
                op: Some(op),
            }))
        } else {
            Self::leaf(value)
        }
    }

    /// A tensor holding `array` (any dimensionality), not requiring a gradient.
    pub fn from_array<D: Dimension>(array: ndarray::Array<T, D>) -> Self {
        Self::leaf(array.into_dyn().into_shared())
    }

    /// A tensor sharing `value`'s buffer (no copy).
    pub fn from_shared(value: Value<T>) -> Self {
        Self::leaf(value)
    }

    /// A tensor of `shape` from row-major `data`.
    ///
    /// # Panics
    /// When `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        let n = data.len();
        let a = ArrayD::from_shape_vec(IxDyn(shape), data).unwrap_or_else(|_| {
            panic!("from_vec: {n} elements do not fill shape {shape:?}");
        });
        Self::from_array(a)
    }

    /// A 0-dimensional tensor holding `x`.
    pub fn scalar(x: T) -> Self {
        Self::from_array(ndarray::arr0(x))
    }

    /// A tensor of `shape` filled with `x`.
    pub fn full(shape: &[usize], x: T) -> Self {
        Self::from_array(ArrayD::from_elem(IxDyn(shape), x))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// Independent draws from the uniform distribution on `[low, high)`, reproducible from `seed`.
    pub fn rand_uniform(shape: &[usize], low: f64, high: f64, seed: u64) -> Self {
        Self::rand_uniform_with(shape, low, high, &mut StdRng::seed_from_u64(seed))
    }

    /// Uniform draws on `[low, high)` from a caller's generator (to continue one stream).
    pub fn rand_uniform_with(shape: &[usize], low: f64, high: f64, rng: &mut StdRng) -> Self {
        let dist = Uniform::new(low, high).expect("rand_uniform: need low < high");
        let n = shape.iter().product();
        let v = (0..n).map(|_| T::of(dist.sample(rng))).collect();
        Self::from_vec(v, shape)
    }

    /// Independent draws from the normal distribution, reproducible from `seed`.
    pub fn rand_normal(shape: &[usize], mean: f64, std: f64, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let dist = Normal::new(mean, std).expect("rand_normal: need std ≥ 0");
        let n = shape.iter().product();
        let v = (0..n).map(|_| T::of(dist.sample(&mut rng))).collect();
        Self::from_vec(v, shape)
    }

    /// Marks this leaf as requiring a gradient and returns it (builder style).
    pub fn with_grad(self) -> Self {
        self.set_requires_grad(true);
        self
    }

    /// Sets whether this leaf collects a gradient in [`backward`](Tensor::backward).
    ///
    /// # Panics
    /// On a tensor produced by an op: only leaves can change the flag, as in PyTorch.
    pub fn set_requires_grad(&self, requires: bool) {
        assert!(
            self.is_leaf(),
            "set_requires_grad: only a leaf tensor can change requires_grad"
        );
        self.0.requires_grad.set(requires);
    }

    /// Whether gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Whether this tensor was created by the user rather than recorded as an op's result.
    pub fn is_leaf(&self) -> bool {
        self.0.op.is_none()
    }

    /// The gradient accumulated by [`backward`](Tensor::backward), if any.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.0.grad.borrow().clone()
    }

    /// Replaces the accumulated gradient.
    pub fn set_grad(&self, grad: Option<Tensor<T>>) {
        *self.0.grad.borrow_mut() = grad;
    }

    /// Forgets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// A new leaf sharing this tensor's value, cut from the graph.
    pub fn detach(&self) -> Tensor<T> {
        Self::leaf(self.value().clone())
    }

    /// The value, borrowed.
    pub fn value(&self) -> Ref<'_, Value<T>> {
        self.0.value.borrow()
    }

    /// Mutates the value in place; used by optimisers. If another tensor shares the buffer (a
    /// transpose or reshape of this one), the buffer is copied first, so that tensor keeps the
    /// old value. A graph refers to its input tensors, not to copies of their values: update
    /// parameters after `backward`, as every training loop does.
    pub fn update(&self, f: impl FnOnce(ArrayViewMutD<'_, T>)) {
        let mut v = self.0.value.borrow_mut();
        f(v.view_mut());
    }

    /// Replaces the value (shapes may differ; the graph is not touched).
    pub fn set_value(&self, value: ArrayD<T>) {
        *self.0.value.borrow_mut() = value.into_shared();
    }

    /// A copy of the value as an owned array.
    pub fn to_array(&self) -> ArrayD<T> {
        self.value().to_owned()
    }

    /// The elements in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        self.value().iter().copied().collect()
    }

    /// The single element of a one-element tensor.
    ///
    /// # Panics
    /// When the tensor has more than one element.
    pub fn item(&self) -> T {
        let v = self.value();
        assert_eq!(
            v.len(),
            1,
            "item: tensor of shape {:?} has {} elements, not one",
            v.shape(),
            v.len()
        );
        *v.iter().next().unwrap()
    }

    /// The shape (no allocation for up to four axes; see [`Shape`]).
    pub fn shape(&self) -> Shape {
        Shape(self.value().raw_dim())
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.value().ndim()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.value().len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A detached copy in another element type (`f32` ↔ `f64`).
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let v = self.value().mapv(|x| U::of(x.to_f64_lossless()));
        Tensor::from_array(v)
    }

    /// The value of a tensor the caller owns, for overwriting in place: `Some` only when
    /// this handle is the sole handle to the node (`Rc::get_mut`, so the borrow checker, not
    /// a reference count read at some earlier moment, guarantees that nobody can see the
    /// change) and the node records no op (so no graph keeps the old value). Taking `self`
    /// by `&mut` is the point: code holding a borrowed `&Tensor` cannot reach this, so a
    /// buffer is only ever reused by whoever was handed it by value.
    pub(crate) fn value_mut_if_unique(&mut self) -> Option<&mut Value<T>> {
        let node = Rc::get_mut(&mut self.0)?;
        if node.op.is_some() || node.requires_grad.get() {
            return None;
        }
        // `Value` is copy-on-write: if a view elsewhere shares the buffer, writing through
        // this reference copies it first, so such a view keeps its values too.
        Some(node.value.get_mut())
    }

    /// Identity of the node, for maps keyed by tensor.
    pub(crate) fn id(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    /// Whether two handles refer to the same node.
    pub fn same_node(&self, other: &Tensor<T>) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0.op.as_ref().map(|o| o.name()).unwrap_or("leaf");
        write!(
            f,
            "Tensor<{}>(shape={:?}, op={}, requires_grad={})\n{}",
            T::NAME,
            self.shape(),
            op,
            self.requires_grad(),
            *self.value()
        )
    }
}

impl<T: Element> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self.value())
    }
}
