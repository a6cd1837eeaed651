//! The hand-written baseline, the denominator of the CI performance gate, computes the same
//! step as the autograd trainer: same weights after several steps, to f32 rounding.

use ferrograd::analysis::baseline::HandwrittenMlp;
use ferrograd::nn::{Activation, Init, Mlp, Module};
use ferrograd::optim::{backward_and_step, Sgd};
use ferrograd::Tensor;

#[test]
fn handwritten_and_autograd_steps_give_the_same_weights() {
    for &activation in Activation::ALL {
        let model = Mlp::<f32>::new(&[12, 9, 7, 4], activation, Init::Xavier, 3);
        let mut hand = HandwrittenMlp::from_mlp(&model);
        let params = model.parameters();
        let mut sgd = Sgd::new(0.9);
        let (lr, batch) = (0.1, 16);
        for step in 0..4u64 {
            let x = Tensor::<f32>::rand_normal(&[batch, 12], 0.0, 1.0, 100 + step);
            let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + step as usize) % 4).collect();
            let loss_autograd = model.loss(&x, &labels).item();
            assert!(backward_and_step(
                &model.loss(&x, &labels),
                &params,
                &mut sgd,
                lr
            ));
            let xv = x.to_array().into_dimensionality::<ndarray::Ix2>().unwrap();
            let loss_hand = hand.step(xv.view(), &labels, lr as f32, 0.9, 0.0);
            assert!(
                (loss_autograd - loss_hand).abs() <= 1e-5 * loss_hand.abs().max(1.0),
                "{activation}, step {step}: loss {loss_autograd} vs {loss_hand}"
            );
        }
        for (layer, (auto, hand)) in model.layers.iter().zip(hand.weights()).enumerate() {
            let auto = auto.weight.to_vec();
            let scale = hand.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, h) in auto.iter().zip(hand.iter()) {
                assert!(
                    (a - h).abs() <= 1e-5 * scale,
                    "{activation}, layer {layer}: weight {a} vs {h}"
                );
            }
        }
        // The weights moved: the comparison is not of two untouched copies.
        let start = Mlp::<f32>::new(&[12, 9, 7, 4], activation, Init::Xavier, 3);
        assert_ne!(
            start.layers[0].weight.to_vec(),
            model.layers[0].weight.to_vec()
        );
    }
}
