//! Matrix products, lowered to GEMM (`matrixmultiply` by default, OpenBLAS's `sgemm`/`dgemm`
//! with `--features openblas`).
//!
//! Transposed operands are strided views of the same buffer; ndarray hands them to GEMM with a
//! transpose flag (BLAS) or as strides (matrixmultiply), so backward never copies a matrix.

use super::Op;
use crate::tensor::elem::Element;
use crate::tensor::Tensor;
use ndarray::{ArrayView2, Ix2, Zip};

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
        let (sa, sb) = (self.shape(), other.shape());
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
            view2("matmul", &a).dot(&view2("matmul", &b))
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
        let value = {
            let (xv, wv) = (self.value(), w.value());
            let (x2, w2) = (view2("linear", &xv), view2("linear", &wv));
            assert_eq!(
                x2.ncols(),
                w2.nrows(),
                "linear: input of shape {:?} does not fit weights of shape {:?}",
                xv.shape(),
                wv.shape()
            );
            let mut out = x2.dot(&w2);
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
                Zip::from(&mut out)
                    .and_broadcast(&bias)
                    .for_each(|o, &c| *o = *o + c);
            }
            out
        };
        Tensor::from_op(
            value.into_dyn(),
            Op::Linear {
                x: self.clone(),
                w: w.clone(),
                b: b.cloned(),
            },
        )
    }
}
