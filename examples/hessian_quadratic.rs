//! The Hessian of a quadratic, three ways: assembled from Hessian-vector products (double
//! backward), its eigenvalues by a dense eigensolver, and the extreme ones by Lanczos.
//!
//! `cargo run --release --example hessian_quadratic`

use ferrograd::analysis::eigen::symmetric_eigen;
use ferrograd::analysis::lanczos::lanczos_extremes;
use ferrograd::{hessian, hvp, Tensor};
use ndarray::array;

fn main() {
    // f(x) = ½ xᵀAx + sin(x₀): its Hessian is A plus −sin(x₀) in the corner.
    let a = array![[4.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 2.0]];
    let at = Tensor::<f64>::from_array(a.clone());
    let f =
        |x: &Tensor<f64>| x.matmul(&at.matmul(x)).mul_scalar(0.5) + x.slice(0, 0, 1).sin().sum();
    let x = Tensor::<f64>::from_vec(vec![0.5, -1.0, 2.0], &[3]);

    let h = hessian(f, &x)
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    println!("Hessian from double backward:\n{h:.6}");
    let mut expected = a.clone();
    expected[[0, 0]] -= 0.5f64.sin();
    assert!((&h - &expected).iter().all(|d| d.abs() < 1e-12));

    let eig = symmetric_eigen(&h);
    println!("eigenvalues (dense solver): {:.6?}", eig.values);

    // Lanczos needs only products H·v, never the matrix: what makes it work for 134,794
    // parameters in `ferrograd analyze hessian`.
    let xg = x.detach().with_grad();
    let mut apply = |v: &[f64]| {
        let g = |p: &[Tensor<f64>]| f(&p[0]);
        hvp(
            g,
            std::slice::from_ref(&xg),
            &[Tensor::from_vec(v.to_vec(), &[3])],
        )[0]
        .to_vec()
    };
    let l = lanczos_extremes(&mut apply, 3, 1, 3, 1e-12, true, 0);
    println!(
        "Lanczos: largest {:.6} (residual {:.1e}), smallest {:.6}",
        l.largest[0].value, l.largest[0].residual, l.smallest[0].value
    );
    assert!((l.largest[0].value - eig.values[2]).abs() < 1e-10);
    assert!((l.smallest[0].value - eig.values[0]).abs() < 1e-10);
}
