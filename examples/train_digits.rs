//! Training on the embedded digits through the library API: data, model, loop, evaluation.
//!
//! `cargo run --release --example train_digits`

use ferrograd::data::{load_digits, shuffled_batches, split_validation};
use ferrograd::nn::{Activation, Init, Mlp, Module};
use ferrograd::optim::{Optimizer, Sgd};
use ferrograd::predict::evaluate;
use ferrograd::Tensor;
use ndarray::Axis;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn main() -> anyhow::Result<()> {
    let (train, test) = load_digits()?; // 1,438 + 359 images of 8×8, in the binary
    let splits = split_validation(train, test, 0.1, 42);
    let model = Mlp::<f32>::new(&[64, 128, 128, 10], Activation::Relu, Init::Xavier, 42);
    let params = model.parameters();
    let mut sgd = Sgd::new(0.9);
    let mut rng = StdRng::seed_from_u64(42);
    for epoch in 0..15 {
        let lr = 0.03 * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / 15.0).cos());
        for batch in shuffled_batches(splits.train.len(), 32, &mut rng) {
            let x = Tensor::from_array(splits.train.features.select(Axis(0), &batch));
            let y: Vec<usize> = batch.iter().map(|&i| splits.train.labels[i]).collect();
            let loss = model.forward(&x).cross_entropy(&y);
            for p in &params {
                p.zero_grad();
            }
            loss.backward();
            sgd.step(&params, lr);
        }
        let (val_loss, val_acc) = evaluate(&model, &splits.val);
        println!(
            "epoch {:>2}: validation loss {val_loss:.4}, accuracy {:.2}%",
            epoch + 1,
            100.0 * val_acc
        );
    }
    let (_, test_acc) = evaluate(&model, &splits.test);
    println!("test accuracy {:.2}%", 100.0 * test_acc);
    assert!(test_acc > 0.93);
    Ok(())
}
