//! The catalogue of every op, with random shapes and values drawn away from kinks and domain
//! edges, that gradcheck, the jvp tests and the NaN tests run over; and the test that it covers
//! the whole op set.

use super::ops::Activation;
use super::Tensor;
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A function of several `f64` tensors, the thing being checked.
type CaseFn = super::check::CheckFn;

/// One op's check: its name, its inputs and the function applying it.
pub struct OpCase {
    /// The op's name, as the `gradcheck` command prints it (`sum_axis1`, `add_broadcast`...).
    pub name: String,
    /// The inputs, drawn away from the op's kinks and outside its domain's edges.
    pub inputs: Vec<ArrayD<f64>>,
    /// The op applied to the inputs.
    pub f: Box<CaseFn>,
}

/// Draws the shapes and values of the op catalogue.
struct Draw {
    rng: StdRng,
}

impl Draw {
    fn dim(&mut self) -> usize {
        self.rng.random_range(2..=4)
    }
    fn shape(&mut self, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| self.dim()).collect()
    }
    fn normal(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| StandardNormal.sample(&mut self.rng))
    }
    /// Values with |x| ≥ 0.2: away from the kinks of relu and abs.
    fn away_from_zero(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| {
            let m: f64 = self.rng.random_range(0.2..2.0);
            if self.rng.random_bool(0.5) {
                m
            } else {
                -m
            }
        })
    }
    fn positive(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| self.rng.random_range(0.5..2.0))
    }
    /// Values at least 0.1 away from ±0.5, the bounds the clamp case uses.
    fn away_from_bounds(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| loop {
            let x: f64 = self.rng.random_range(-1.2..1.2);
            if (x.abs() - 0.5).abs() > 0.1 {
                break x;
            }
        })
    }
}

fn case(
    name: &str,
    inputs: Vec<ArrayD<f64>>,
    f: impl Fn(&[Tensor<f64>]) -> Tensor<f64> + 'static,
) -> OpCase {
    OpCase {
        name: name.to_string(),
        inputs,
        f: Box::new(f),
    }
}

/// Every op with random shapes (drawn from `seed`), broadcasting variants included.
pub fn op_cases(seed: u64) -> Vec<OpCase> {
    let mut d = Draw {
        rng: StdRng::seed_from_u64(seed),
    };
    let (m, k, n) = (d.dim(), d.dim(), d.dim());
    let s2 = d.shape(2);
    let s3 = d.shape(3);
    let col = vec![s2[0], 1];
    let row = vec![1, s2[1]];
    let mut cases = vec![
        case("add", vec![d.normal(&s2), d.normal(&s2)], |x| &x[0] + &x[1]),
        case("add_broadcast", vec![d.normal(&col), d.normal(&row)], |x| {
            &x[0] + &x[1]
        }),
        case(
            "add_broadcast_rank",
            vec![d.normal(&s3), d.normal(&s3[2..])],
            |x| &x[0] + &x[1],
        ),
        case("sub", vec![d.normal(&s2), d.normal(&s2)], |x| &x[0] - &x[1]),
        case("sub_broadcast", vec![d.normal(&s2), d.normal(&row)], |x| {
            &x[0] - &x[1]
        }),
        case("mul", vec![d.normal(&s2), d.normal(&s2)], |x| &x[0] * &x[1]),
        case("mul_broadcast", vec![d.normal(&col), d.normal(&s2)], |x| {
            &x[0] * &x[1]
        }),
        case("div", vec![d.normal(&s2), d.away_from_zero(&s2)], |x| {
            &x[0] / &x[1]
        }),
        case(
            "div_broadcast",
            vec![d.normal(&s2), d.away_from_zero(&row)],
            |x| &x[0] / &x[1],
        ),
        case("neg", vec![d.normal(&s2)], |x| x[0].neg()),
        case("pow", vec![d.positive(&s2)], |x| x[0].powf(2.5)),
        case("pow_tensor", vec![d.positive(&s2), d.normal(&s2)], |x| {
            x[0].pow(&x[1])
        }),
        case("exp", vec![d.normal(&s2)], |x| x[0].exp()),
        case("log", vec![d.positive(&s2)], |x| x[0].log()),
        case("sin", vec![d.normal(&s2)], |x| x[0].sin()),
        case("cos", vec![d.normal(&s2)], |x| x[0].cos()),
        case("tanh", vec![d.normal(&s2)], |x| x[0].tanh()),
        case("relu", vec![d.away_from_zero(&s2)], |x| x[0].relu()),
        // relu is piecewise linear: its second derivative is zero, so check it inside a
        // nonlinear function too, where double backward must carry the mask through.
        case("relu_composed", vec![d.away_from_zero(&s2)], |x| {
            x[0].relu().square().sin()
        }),
        case("sigmoid", vec![d.normal(&s2)], |x| x[0].sigmoid()),
        case("sqrt", vec![d.positive(&s2)], |x| x[0].sqrt()),
        case("abs", vec![d.away_from_zero(&s2)], |x| x[0].abs()),
        case("maximum", vec![d.normal(&s2), d.normal(&s2)], |x| {
            x[0].maximum(&x[1])
        }),
        case(
            "maximum_broadcast",
            vec![d.normal(&s2), d.normal(&row)],
            |x| x[0].maximum(&x[1]),
        ),
        case("minimum", vec![d.normal(&s2), d.normal(&col)], |x| {
            x[0].minimum(&x[1])
        }),
        case("clamp", vec![d.away_from_bounds(&s2)], |x| {
            x[0].clamp(-0.5, 0.5).square()
        }),
        case("matmul", vec![d.normal(&[m, k]), d.normal(&[k, n])], |x| {
            x[0].matmul(&x[1])
        }),
        case(
            "matmul_matvec",
            vec![d.normal(&[m, k]), d.normal(&[k])],
            |x| x[0].matmul(&x[1]),
        ),
        case(
            "matmul_vecmat",
            vec![d.normal(&[k]), d.normal(&[k, n])],
            |x| x[0].matmul(&x[1]),
        ),
        case("matmul_dot", vec![d.normal(&[k]), d.normal(&[k])], |x| {
            x[0].matmul(&x[1])
        }),
        case(
            "matmul_transposed",
            vec![d.normal(&[k, m]), d.normal(&[n, k])],
            |x| x[0].t().matmul(&x[1].t()),
        ),
        case(
            "linear",
            vec![d.normal(&[m, k]), d.normal(&[k, n]), d.normal(&[n])],
            |x| x[0].linear(&x[1], Some(&x[2])).tanh(),
        ),
        case(
            "linear_relu",
            vec![d.normal(&[m, k]), d.normal(&[k, n]), d.normal(&[n])],
            |x| {
                x[0].linear_act(&x[1], Some(&x[2]), Activation::Relu)
                    .square()
            },
        ),
        case(
            "linear_tanh",
            vec![d.normal(&[m, k]), d.normal(&[k, n]), d.normal(&[n])],
            |x| x[0].linear_act(&x[1], Some(&x[2]), Activation::Tanh),
        ),
        case(
            "linear_sigmoid_nobias",
            vec![d.normal(&[m, k]), d.normal(&[k, n])],
            |x| x[0].linear_act(&x[1], None, Activation::Sigmoid),
        ),
        case("transpose", vec![d.normal(&s2)], |x| x[0].t().sin()),
        case("permute", vec![d.normal(&s3)], |x| {
            x[0].permute(&[2, 0, 1]).sin()
        }),
        case("reshape", vec![d.normal(&s3)], |x| {
            let len = x[0].len();
            x[0].reshape(&[len]).sin()
        }),
        case("reshape_of_view", vec![d.normal(&s2)], |x| {
            let len = x[0].len();
            x[0].t().reshape(&[len]).sin()
        }),
        case("broadcast_to", vec![d.normal(&row)], {
            let target = s2.clone();
            move |x| x[0].broadcast_to(&target).sin()
        }),
        case("sum", vec![d.normal(&s3)], |x| x[0].sum().sin()),
        case("sum_axis1", vec![d.normal(&s3)], |x| {
            x[0].sum_axes(&[1], false).sin()
        }),
        case("sum_axes02_keepdim", vec![d.normal(&s3)], |x| {
            x[0].sum_axes(&[0, 2], true).sin()
        }),
        case("mean", vec![d.normal(&s3)], |x| x[0].mean().sin()),
        case("mean_axis0", vec![d.normal(&s2)], |x| {
            x[0].mean_axes(&[0], false).sin()
        }),
        case("max", vec![d.normal(&s3)], |x| x[0].max().sin()),
        case("max_axis1", vec![d.normal(&s3)], |x| {
            x[0].max_axes(&[1], false).sin()
        }),
        case("max_axis0_keepdim", vec![d.normal(&s2)], |x| {
            x[0].max_axes(&[0], true).square()
        }),
        case("softmax", vec![d.normal(&s2)], |x| x[0].softmax(1)),
        case("softmax_axis0", vec![d.normal(&s2)], |x| x[0].softmax(0)),
        case("log_softmax", vec![d.normal(&s2)], |x| x[0].log_softmax(1)),
        case("logsumexp", vec![d.normal(&s2)], |x| {
            x[0].logsumexp(1, false)
        }),
    ];
    let labels: Vec<usize> = (0..m).map(|_| d.rng.random_range(0..k)).collect();
    cases.push(case("cross_entropy", vec![d.normal(&[m, k])], move |x| {
        x[0].cross_entropy(&labels)
    }));
    let picks: Vec<usize> = (0..5).map(|_| d.rng.random_range(0..s2[0])).collect();
    cases.push(case("gather", vec![d.normal(&s2)], move |x| {
        x[0].index_select(&picks).sin()
    }));
    let other = vec![d.dim(), s2[1]];
    cases.push(case("concat", vec![d.normal(&s2), d.normal(&other)], |x| {
        Tensor::concat(&[x[0].clone(), x[1].clone()], 0).sin()
    }));
    cases.push(case(
        "concat_axis1",
        vec![d.normal(&s2), d.normal(&col)],
        |x| Tensor::concat(&[x[0].clone(), x[1].clone()], 1).sin(),
    ));
    let (lo, hi) = (1, s3[1]);
    cases.push(case("slice", vec![d.normal(&s3)], move |x| {
        x[0].slice(1, lo, hi).sin()
    }));
    activation_cases(&mut cases, &mut d, (m, k, n));
    cases
}

/// A plain case and a fused-linear case for every [`Activation`] that the list above does not
/// already check, so a new activation is covered by defining it. Drawn last, so adding one
/// leaves every other case's inputs (and so `gradcheck --json`) unchanged. The outputs are
/// squared and the inputs kept off 0, so piecewise-linear functions have a second derivative
/// to check and no case sits on a kink.
fn activation_cases(cases: &mut Vec<OpCase>, d: &mut Draw, (m, k, n): (usize, usize, usize)) {
    for &act in Activation::ALL {
        let name = act.as_str();
        let has = |cases: &[OpCase], prefix: &str| cases.iter().any(|c| c.name.starts_with(prefix));
        if !has(cases, name) {
            let shape = d.shape(2);
            cases.push(case(name, vec![d.away_from_zero(&shape)], move |x| {
                x[0].activate(act).square()
            }));
        }
        if !has(cases, &format!("linear_{name}")) {
            let inputs = vec![d.normal(&[m, k]), d.normal(&[k, n]), d.normal(&[n])];
            cases.push(case(&format!("linear_{name}"), inputs, move |x| {
                x[0].linear_act(&x[1], Some(&x[2]), act).square()
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::check::leaves;
    use crate::tensor::graph::grad;
    use std::collections::BTreeSet;

    /// The names an enum's `name` function returns, read from its source: the op set itself,
    /// not a list kept beside it.
    fn names_in(source: &str, function: &str) -> Vec<String> {
        let body = &source[source.find(function).expect("name function")..];
        let body = &body[..body.find("\n    }\n").expect("end of function")];
        body.split("=> \"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_string())
            .collect()
    }

    /// Every op node recorded by the catalogue's functions and by their gradients' graphs.
    fn recorded_names() -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        for case in op_cases(0) {
            let xs = leaves(&case.inputs);
            let out = (case.f)(&xs);
            let y = (&out * &out).sum();
            let gs = grad(std::slice::from_ref(&y), &xs, None, true);
            let mut stack: Vec<Tensor<f64>> = gs.into_iter().chain([y]).collect();
            let mut visited = BTreeSet::new();
            while let Some(t) = stack.pop() {
                if !visited.insert(t.id()) {
                    continue;
                }
                if let Some(op) = t.0.op.as_ref() {
                    seen.insert(op.name().to_string());
                    op.for_each_input(|i| stack.push(i.clone()));
                }
            }
        }
        seen
    }

    #[test]
    fn the_catalogue_exercises_every_op_in_the_op_set() {
        let mut all: Vec<String> = names_in(include_str!("ops/mod.rs"), "fn name(&self)");
        all.extend(names_in(
            include_str!("ops/elementwise.rs"),
            "fn name(&self)",
        ));
        all.extend(names_in(include_str!("ops/binary.rs"), "fn name(self)"));
        all.extend(Activation::ALL.iter().map(|a| a.as_str().to_string()));
        assert!(all.len() > 30, "read only {all:?}");
        let seen = recorded_names();
        let missing: Vec<&String> = all.iter().filter(|n| !seen.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "ops no gradcheck case records: {missing:?}"
        );
    }

    #[test]
    fn every_activation_has_a_plain_and_a_fused_case() {
        let names: Vec<String> = op_cases(3).into_iter().map(|c| c.name).collect();
        for &act in Activation::ALL {
            for want in [act.as_str().to_string(), format!("linear_{act}")] {
                assert!(names.iter().any(|n| n.starts_with(&want)), "no case {want}");
            }
        }
    }
}
