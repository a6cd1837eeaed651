//! [`Shape`]: a tensor's shape, handed out without allocating.

use ndarray::{Dimension, IxDyn};
use std::fmt;
use std::ops::Deref;

/// A tensor's shape, as [`Tensor::shape`](super::Tensor::shape) returns it.
///
/// It is a copy of the array's own dimension (ndarray's `IxDyn`, which keeps up to four axes
/// inline), so asking a tensor for its shape — which every op and backward rule does — costs
/// no allocation. It derefs to `[usize]` and compares equal to slices, arrays and `Vec`s:
///
/// ```
/// use ferrograd::Tensor;
/// let t = Tensor::<f32>::zeros(&[2, 3]);
/// assert_eq!(t.shape(), vec![2, 3]);
/// assert_eq!(t.shape(), [2, 3]);
/// assert_eq!(t.shape()[1], 3);
/// let grown: Vec<usize> = t.shape().iter().map(|d| d + 1).collect();
/// assert_eq!(Tensor::<f32>::ones(&grown).shape(), &[3, 4]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Shape(pub(crate) IxDyn);

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        self.0.slice()
    }
}

impl fmt::Debug for Shape {
    /// As the slice: `[2, 3]`, the form panic messages and `assert_eq!` print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<Shape> for IxDyn {
    fn from(s: Shape) -> IxDyn {
        s.0
    }
}

impl PartialEq<[usize]> for Shape {
    fn eq(&self, other: &[usize]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[usize]> for Shape {
    fn eq(&self, other: &&[usize]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<usize>> for Shape {
    fn eq(&self, other: &Vec<usize>) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Shape {
    fn eq(&self, other: &[usize; N]) -> bool {
        **self == other[..]
    }
}

impl<const N: usize> PartialEq<&[usize; N]> for Shape {
    fn eq(&self, other: &&[usize; N]) -> bool {
        **self == other[..]
    }
}

impl PartialEq<Shape> for Vec<usize> {
    fn eq(&self, other: &Shape) -> bool {
        self[..] == **other
    }
}
