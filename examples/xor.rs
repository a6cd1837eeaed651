//! XOR with a tiny MLP: a problem no linear model can solve, learnt in a few hundred steps.
//!
//! `cargo run --release --example xor`

use ferrograd::nn::{Activation, Init, Mlp, Module};
use ferrograd::optim::{Optimizer, Sgd};
use ferrograd::{no_grad, Tensor};

fn main() {
    let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]);
    let labels = [0usize, 1, 1, 0]; // x₀ XOR x₁, as two classes
    let model = Mlp::<f32>::new(&[2, 8, 2], Activation::Tanh, Init::Xavier, 1);
    let params = model.parameters();
    let mut sgd = Sgd::new(0.9);
    for step in 0..300 {
        let loss = model.forward(&x).cross_entropy(&labels);
        for p in &params {
            p.zero_grad();
        }
        loss.backward();
        sgd.step(&params, 0.1);
        if step % 50 == 0 {
            println!("step {step:>3}: loss {:.4}", loss.item());
        }
    }
    let _no_graph = no_grad();
    let probabilities = model.forward(&x).softmax(1);
    for (i, row) in probabilities.to_array().outer_iter().enumerate() {
        println!(
            "{:?} → P(1) = {:.3} (want {})",
            &x.to_vec()[2 * i..2 * i + 2],
            row[1],
            labels[i]
        );
        assert_eq!((row[1] > 0.5) as usize, labels[i]);
    }
}
