//! Fitting a line by gradient descent: the smallest complete use of the engine.
//!
//! `cargo run --release --example fit_line`

use ferrograd::{no_grad, Tensor};

fn main() {
    // Data: y = 2x + 1 plus a little noise, 50 points on [-1, 1].
    let x = Tensor::<f64>::from_vec((0..50).map(|i| -1.0 + i as f64 / 24.5).collect(), &[50]);
    let noise = Tensor::<f64>::rand_normal(&[50], 0.0, 0.05, 0);
    let y = &(&x * 2.0) + 1.0;
    let y = &y + &noise;

    // Parameters, starting from zero.
    let w = Tensor::<f64>::scalar(0.0).with_grad();
    let b = Tensor::<f64>::scalar(0.0).with_grad();

    for step in 0..200 {
        let prediction = &(&x * &w) + &b;
        let loss = (&prediction - &y).square().mean(); // mean squared error
        w.zero_grad();
        b.zero_grad();
        loss.backward(); // dloss/dw and dloss/db land in w.grad() and b.grad()
        {
            let _no_graph = no_grad(); // the update itself is not part of the model
            let lr = 0.5;
            w.set_value((&w - &w.grad().unwrap().mul_scalar(lr)).to_array());
            b.set_value((&b - &b.grad().unwrap().mul_scalar(lr)).to_array());
        }
        if step % 50 == 0 {
            println!(
                "step {step:>3}: loss {:.5}, w {:.4}, b {:.4}",
                loss.item(),
                w.item(),
                b.item()
            );
        }
    }
    println!(
        "fitted: y = {:.3}x + {:.3} (the data was made with y = 2x + 1)",
        w.item(),
        b.item()
    );
    assert!((w.item() - 2.0).abs() < 0.05 && (b.item() - 1.0).abs() < 0.05);
}
