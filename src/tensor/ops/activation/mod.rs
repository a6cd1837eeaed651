//! The activation functions: each defined once, in its own file, as a [`Function`] — its value,
//! its derivative, and its backward rule in differentiable tensor ops side by side (in the
//! spirit of dfdx's `f`/`df` pairs). The plain elementwise op, the fused linear + activation
//! kernel, `nn`'s layers and the hand-written baseline all read these definitions, so they
//! compute the same bits and cannot drift apart.
//!
//! Adding an activation is one file implementing [`Function`] plus one arm (two lines) in
//! the `activations!` list below; the [`Activation`] enum, its names, its command-line value, the
//! gradcheck cases and the dispatch to monomorphised kernels all follow from that line.

use crate::tensor::elem::Element;
use crate::tensor::kernels::Cost;
use crate::tensor::Tensor;

/// One differentiable elementwise function of one variable.
pub trait Function: Copy + Send + Sync + 'static {
    /// Lowercase name, as the command line, model files and gradcheck print it.
    const NAME: &'static str;
    /// How expensive one evaluation is (decides when kernels go parallel).
    const COST: Cost;
    /// Whether the derivative is a function of the output alone, so a fused layer need keep
    /// only its output (ReLU, tanh and the sigmoid); otherwise it keeps the pre-activation too.
    const FROM_OUTPUT: bool;
    /// `f(x)`.
    fn value<T: Element>(x: T) -> T;
    /// `f'(x)`, given `x` and `y = f(x)` (each function reads whichever is cheaper).
    fn derivative<T: Element>(x: T, y: T) -> T;
    /// `g · f'(x)` in differentiable tensor ops (so double backward works), given the input
    /// `x` (absent when [`FROM_OUTPUT`](Function::FROM_OUTPUT) let a fused layer drop it), the
    /// output `y` and the incoming gradient `g` by value (a rule may reuse its buffer).
    fn backward<T: Element>(x: Option<&Tensor<T>>, y: &Tensor<T>, g: Tensor<T>) -> Tensor<T>;
}

/// Code generic over a [`Function`], run for an [`Activation`] chosen at run time: the `match`
/// happens once, outside the loops, so every kernel is monomorphised for its function.
pub trait Visit {
    /// What the visit returns.
    type Output;
    /// Runs with the function's type.
    fn visit<F: Function>(self) -> Self::Output;
}

macro_rules! activations {
    ($($(#[$doc:meta])* $variant:ident in $module:ident,)*) => {
        $(mod $module;
        pub use $module::$variant;)*

        /// An activation function, usable as a layer's nonlinearity and as a tensor op.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
        #[serde(rename_all = "lowercase")]
        pub enum Activation {
            $($(#[$doc])* $variant,)*
        }

        impl Activation {
            /// Every activation, in the order of the list that defines them.
            pub const ALL: &'static [Activation] = &[$(Activation::$variant,)*];

            /// Runs `v` with this activation's [`Function`] type.
            pub fn visit<V: Visit>(self, v: V) -> V::Output {
                match self {
                    $(Activation::$variant => v.visit::<$variant>(),)*
                }
            }

            /// Its lowercase name (`"relu"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Activation::$variant => <$variant as Function>::NAME,)*
                }
            }
        }
    };
}

activations! {
    /// `max(x, 0)`
    Relu in relu,
    /// `tanh x`
    Tanh in tanh,
    /// `1 / (1 + e⁻ˣ)`
    Sigmoid in sigmoid,
    /// `x·Φ(x)` in the tanh approximation (PyTorch's `gelu(approximate="tanh")`)
    Gelu in gelu,
    /// `x·σ(x)` (also called swish)
    Silu in silu,
}

impl Activation {
    /// The name, parsed (case-insensitive).
    pub fn parse(s: &str) -> Option<Activation> {
        Activation::ALL
            .iter()
            .copied()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// `f(x)` for one scalar. For loops, [`visit`](Activation::visit) with a monomorphised
    /// kernel instead: a `match` per element stops vectorisation.
    pub fn value<T: Element>(self, x: T) -> T {
        struct V<T>(T);
        impl<T: Element> Visit for V<T> {
            type Output = T;
            fn visit<F: Function>(self) -> T {
                F::value(self.0)
            }
        }
        self.visit(V(x))
    }

    /// `f'(x)` for one scalar, given `x` and `y = f(x)`.
    pub fn derivative<T: Element>(self, x: T, y: T) -> T {
        struct V<T>(T, T);
        impl<T: Element> Visit for V<T> {
            type Output = T;
            fn visit<F: Function>(self) -> T {
                F::derivative(self.0, self.1)
            }
        }
        self.visit(V(x, y))
    }

    /// Whether the derivative needs only the output (see [`Function::FROM_OUTPUT`]).
    pub fn from_output(self) -> bool {
        struct V;
        impl Visit for V {
            type Output = bool;
            fn visit<F: Function>(self) -> bool {
                F::FROM_OUTPUT
            }
        }
        self.visit(V)
    }

    /// `g · f'(x)` in differentiable tensor ops (see [`Function::backward`]).
    pub(crate) fn backward<T: Element>(
        self,
        x: Option<&Tensor<T>>,
        y: &Tensor<T>,
        g: Tensor<T>,
    ) -> Tensor<T> {
        struct V<'a, T: Element>(Option<&'a Tensor<T>>, &'a Tensor<T>, Tensor<T>);
        impl<T: Element> Visit for V<'_, T> {
            type Output = Tensor<T>;
            fn visit<F: Function>(self) -> Tensor<T> {
                F::backward(self.0, self.1, self.2)
            }
        }
        self.visit(V(x, y, g))
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input a backward rule of a function that is not [`Function::FROM_OUTPUT`] needs.
fn input<'a, T: Element>(x: Option<&'a Tensor<T>>, name: &str) -> &'a Tensor<T> {
    x.unwrap_or_else(|| panic!("{name}: backward needs the input, which was not kept"))
}

impl<T: Element> Tensor<T> {
    /// `act` applied elementwise, as a differentiable op.
    pub fn activate(&self, act: Activation) -> Tensor<T> {
        self.unary(super::UnaryKind::Activation(act))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each scalar derivative against a central difference, over a range of inputs.
    #[test]
    fn every_scalar_derivative_matches_a_central_difference() {
        for &act in Activation::ALL {
            for i in -40..=40 {
                let x = i as f64 / 8.0 + 0.013;
                let h = 1e-6;
                let numeric = (act.value(x + h) - act.value(x - h)) / (2.0 * h);
                let analytic = act.derivative(x, act.value(x));
                assert!(
                    (numeric - analytic).abs() <= 1e-7 * (1.0 + analytic.abs()),
                    "{act} at {x}: {analytic} vs {numeric}"
                );
            }
        }
    }

    #[test]
    fn names_parse_back() {
        for &act in Activation::ALL {
            assert_eq!(Activation::parse(act.as_str()), Some(act));
            assert_eq!(Activation::parse(&act.as_str().to_uppercase()), Some(act));
        }
        assert_eq!(Activation::parse("softplus"), None);
    }
}
