//! Derivatives, checked three ways: every op (first and second order) and every model against
//! central differences; the models against hand-derived closed forms; and the transforms'
//! output against the verifier and the size bounds.
//!
//! Step rule for finite differences: along a random direction `u` (entries uniform in [-1, 1]),
//! central differences with steps `h = 1e-3` and `h/2`, combined by Richardson extrapolation
//! (`(4 D(h/2) - D(h)) / 3`, error O(h^4)). First order differences the function; second order
//! differences `t -> <grad f(x + t u), v>` for comparison with `<Hv, u>`.

mod common;

use common::examples::example;
use common::numeric::{derivative, dot, rel, run, shifted};

use adjit::ad;
use adjit::inputs::{defaults, Rng};
use adjit::ir::{Builder, Func, Op, Opcode, Role, Type, Unary};

/// Directional first and second derivatives of `f` at `inputs`: AD against differences.
/// Returns the two relative errors.
fn directional_errors(f: &Func, inputs: &[Vec<f64>], seed: u64) -> (f64, f64) {
    let wrt = ad::resolve_wrt(f, None).unwrap();
    let g = ad::grad(f, None).unwrap();
    let h = ad::hvp(f, None).unwrap();
    let mut rng = Rng::new(seed);
    let dir = |rng: &mut Rng| -> Vec<Vec<f64>> {
        wrt.iter()
            .map(|&i| (0..inputs[i].len()).map(|_| rng.range(-1.0, 1.0)).collect())
            .collect()
    };
    let (u, v) = (dir(&mut rng), dir(&mut rng));
    let k = wrt.len();

    let gout = run(&g, inputs);
    let d_ad = dot(&gout[1..], &u);
    let d_fd = derivative(|t| run(f, &shifted(inputs, &wrt, &u, t))[0][0]);

    let mut hin = inputs.to_vec();
    hin.extend(v.iter().cloned());
    let hout = run(&h, &hin);
    // The hvp function's value and gradient are the grad function's.
    assert!(
        common::close(hout[0][0], gout[0][0], 1e-14),
        "@{}: hvp value differs from grad's",
        f.name
    );
    for j in 0..k {
        assert!(
            common::max_rel_diff(&hout[1 + j], &gout[1 + j]) < 1e-12,
            "@{}: hvp's gradient differs",
            f.name
        );
    }
    let s_ad = dot(&hout[1 + k..], &u);
    let s_fd = derivative(|t| dot(&run(&g, &shifted(inputs, &wrt, &u, t))[1..], &v));
    let scale = run(f, inputs)[0][0].abs().max(1.0);
    (rel(d_ad, d_fd, 1e-4 * scale), rel(s_ad, s_fd, 1e-4 * scale))
}

#[test]
fn every_op_first_and_second_order() {
    let mut failures = Vec::new();
    for (i, &op) in Opcode::ALL.iter().enumerate() {
        let f = example(op);
        let inputs = defaults(&f, 11);
        let (e1, e2) = directional_errors(&f, &inputs, 100 + i as u64);
        if !(e1 <= 1e-7 && e2 <= 1e-6) {
            failures.push(format!(
                "{}: first order {e1:.2e}, second order {e2:.2e}",
                op.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_transform_is_closed_over_the_op_set() {
    // Rules emit only ops that have rules: differentiating three times works for every op,
    // and every result verifies.
    for &op in Opcode::ALL.iter() {
        let f = example(op);
        let h = ad::hvp(&f, None).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
        adjit::ir::verify(&h).unwrap();
        let v = ad::vjp(&h, None).unwrap_or_else(|e| panic!("{}: third order: {e}", op.name()));
        adjit::ir::verify(&v).unwrap();
        let back = adjit::ir::parse(&v.to_string()).expect("prints and parses back");
        assert_eq!(back, v);
    }
}

#[test]
fn every_model_against_finite_differences() {
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = adjit::ir::parse(m.text).unwrap();
        let inputs = defaults(&f, 0);
        let (e1, e2) = directional_errors(&f, &inputs, 7);
        assert!(e1 <= 1e-6, "{}: gradient relative error {e1:.2e}", m.name);
        assert!(e2 <= 1e-5, "{}: hvp relative error {e2:.2e}", m.name);
    }
}

/// Norm-wise relative difference: max |a - b| / max |b|.
fn normwise(a: &[f64], b: &[f64]) -> f64 {
    let scale = b
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(f64::MIN_POSITIVE);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn model(name: &str) -> (Func, Vec<Vec<f64>>) {
    let f = adjit::ir::parse(adjit::models::find(name).unwrap().text).unwrap();
    let inputs = defaults(&f, 3);
    (f, inputs)
}

/// A closed-form Hessian-vector product: inputs and directions to `Hv` per input.
type HvpOf<'a> = dyn Fn(&[Vec<f64>], &[Vec<f64>]) -> Vec<Vec<f64>> + 'a;

/// Checks grad (and, given a Hessian-vector product, hvp) against closed forms, to 1e-12.
fn closed_form(name: &str, grad_of: impl Fn(&[Vec<f64>]) -> Vec<Vec<f64>>, hvp_of: Option<&HvpOf>) {
    let (f, inputs) = model(name);
    let g = run(&ad::grad(&f, None).unwrap(), &inputs);
    let want = grad_of(&inputs);
    for (j, w) in want.iter().enumerate() {
        let e = normwise(&g[1 + j], w);
        assert!(
            e <= 1e-12,
            "{name}: gradient {j} differs from the closed form by {e:.2e}"
        );
    }
    if let Some(hv) = hvp_of {
        let wrt = ad::resolve_wrt(&f, None).unwrap();
        let mut rng = Rng::new(5);
        let v: Vec<Vec<f64>> = wrt
            .iter()
            .map(|&i| (0..inputs[i].len()).map(|_| rng.range(-1.0, 1.0)).collect())
            .collect();
        let mut hin = inputs.clone();
        hin.extend(v.iter().cloned());
        let h = run(&ad::hvp(&f, None).unwrap(), &hin);
        let want = hv(&inputs, &v);
        for (j, w) in want.iter().enumerate() {
            let e = normwise(&h[1 + wrt.len() + j], w);
            assert!(
                e <= 1e-12,
                "{name}: hvp {j} differs from the closed form by {e:.2e}"
            );
        }
    }
}

#[test]
fn tiny_closed_form() {
    closed_form(
        "tiny",
        |i| {
            let (a, b) = (i[0][0], i[0][1]);
            vec![vec![a.cos() * b.exp() + b, a.sin() * b.exp() + a]]
        },
        Some(&|i, v| {
            let (a, b) = (i[0][0], i[0][1]);
            let (haa, hab, hbb) = (
                -a.sin() * b.exp(),
                a.cos() * b.exp() + 1.0,
                a.sin() * b.exp(),
            );
            vec![vec![
                haa * v[0][0] + hab * v[0][1],
                hab * v[0][0] + hbb * v[0][1],
            ]]
        }),
    );
}

#[test]
fn neuron_closed_form() {
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    closed_form(
        "neuron",
        |i| {
            let (w, x, b, t) = (i[0][0], i[1][0], i[2][0], i[3][0]);
            let y = sig(w * x + b);
            let dz = (y - t) * y * (1.0 - y);
            vec![vec![x * dz], vec![dz]]
        },
        Some(&|i, v| {
            let (w, x, b, t) = (i[0][0], i[1][0], i[2][0], i[3][0]);
            let y = sig(w * x + b);
            let s = y * (1.0 - y);
            // d2L/dz2 = s^2 + (y - t) s (1 - 2y); z = w x + b, so H = d2L/dz2 [x^2 x; x 1].
            let c = s * s + (y - t) * s * (1.0 - 2.0 * y);
            let dz = x * v[0][0] + v[1][0];
            vec![vec![c * x * dz], vec![c * dz]]
        }),
    );
}

/// Rosenbrock's gradient and Hessian-vector product in closed form, on both sizes shipped.
#[test]
fn rosenbrock_closed_form() {
    for name in ["rosenbrock", "rosenbrock10k"] {
        rosenbrock_closed_form_of(name);
    }
}

fn rosenbrock_closed_form_of(name: &str) {
    closed_form(
        name,
        |i| {
            let x = &i[0];
            let n = x.len();
            let g = (0..n)
                .map(|k| {
                    let mut gk = 0.0;
                    if k + 1 < n {
                        gk += -400.0 * x[k] * (x[k + 1] - x[k] * x[k]) - 2.0 * (1.0 - x[k]);
                    }
                    if k > 0 {
                        gk += 200.0 * (x[k] - x[k - 1] * x[k - 1]);
                    }
                    gk
                })
                .collect();
            vec![g]
        },
        Some(&|i, v| {
            let (x, v) = (&i[0], &v[0]);
            let n = x.len();
            let hv = (0..n)
                .map(|k| {
                    let mut s = 0.0;
                    if k + 1 < n {
                        s += (1200.0 * x[k] * x[k] - 400.0 * x[k + 1] + 2.0) * v[k]
                            - 400.0 * x[k] * v[k + 1];
                    }
                    if k > 0 {
                        s += 200.0 * v[k] - 400.0 * x[k - 1] * v[k - 1];
                    }
                    s
                })
                .collect();
            vec![hv]
        }),
    );
}

#[test]
fn logistic_closed_form() {
    closed_form(
        "logistic",
        |i| {
            let (w, xm, y) = (&i[0], &i[1], &i[2]);
            let (n, d) = (y.len(), w.len());
            let mut g: Vec<f64> = w.iter().map(|wj| 0.01 * wj).collect();
            for s in 0..n {
                let m: f64 = (0..d).map(|j| xm[s * d + j] * w[j]).sum();
                // d/dm log(1 + exp(-y m)) = -y sigmoid(-y m)
                let c = -y[s] / (1.0 + (y[s] * m).exp()) / n as f64;
                for j in 0..d {
                    g[j] += c * xm[s * d + j];
                }
            }
            vec![g]
        },
        None,
    );
}

#[test]
fn transformed_sizes_stay_bounded() {
    let mut table = Vec::new();
    for m in adjit::models::ALL.iter().filter(|m| m.scalar()) {
        let f = adjit::ir::parse(m.text).unwrap();
        let (nf, ng, nh) = (
            f.insts.len(),
            ad::grad(&f, None).unwrap().insts.len(),
            ad::hvp(&f, None).unwrap().insts.len(),
        );
        table.push(format!(
            "{:10} f {nf:6}  grad {ng:6} ({:.2}x)  hvp {nh:6} ({:.2}x)",
            m.name,
            ng as f64 / nf as f64,
            nh as f64 / nf as f64
        ));
        assert!(
            ng <= 4 * nf,
            "{}: grad has {ng} instructions for {nf} in f",
            m.name
        );
        assert!(
            nh <= 10 * nf,
            "{}: hvp has {nh} instructions for {nf} in f",
            m.name
        );
    }
    println!("{}", table.join("\n"));
}

#[test]
fn bad_requests_are_clear_errors() {
    let b = Builder::new("f");
    let x = b.param("x", &[3]);
    let m = b.param_with("m", Type::bool(&[3]), Role::Data, None);
    let y = b.select(m, x, x * 2.0);
    let f = b.finish(&[y.sum(), y]).unwrap();
    let e = ad::grad(&f, None).unwrap_err().to_string();
    assert!(
        e.contains("one scalar f64 result") && e.contains("(f64[], f64[3])"),
        "{e}"
    );
    let e = ad::vjp(&f, Some(&["nope"])).unwrap_err().to_string();
    assert!(
        e.contains("@f has no input 'nope' (its inputs: x, m)"),
        "{e}"
    );
    let e = ad::vjp(&f, Some(&["m"])).unwrap_err().to_string();
    assert!(e.contains("'m' has type bool[3]; only f64 inputs"), "{e}");
    let b = Builder::new("g");
    let d = b.data("d", &[2]);
    let g = b.finish(&[d.sum()]).unwrap();
    let e = ad::grad(&g, None).unwrap_err().to_string();
    assert!(
        e.contains("no input to differentiate") && e.contains("--wrt"),
        "{e}"
    );
    let b = Builder::new("constant");
    let c = b.finish(&[b.scalar(1.0)]).unwrap();
    let e = ad::grad(&c, None).unwrap_err().to_string();
    assert_eq!(e, "@constant has no f64 input to differentiate");
    // vjp handles several non-scalar results.
    let v = ad::vjp(&f, None).unwrap();
    assert_eq!(v.params.len(), 4, "x, m and one cotangent per result");
    assert_eq!(v.results.len(), 3);
}

#[test]
fn vjp_matches_grad_for_a_scalar_function() {
    let f = adjit::ir::parse(adjit::models::find("softmax").unwrap().text).unwrap();
    let inputs = defaults(&f, 1);
    let g = run(&ad::grad(&f, None).unwrap(), &inputs);
    let mut vin = inputs.clone();
    vin.push(vec![1.0]);
    let v = run(&ad::vjp(&f, None).unwrap(), &vin);
    assert_eq!(g, v);
}

#[test]
fn a_million_instructions_differentiate() {
    // Scalar Rosenbrock over 111,112 variables: about a million instructions, read element by
    // element. The transform must not recurse, and its output must stay linear in size.
    let n = 111_112;
    let f = adjit::models::rosenbrock_scalar(n);
    assert!(f.insts.len() >= 1_000_000, "{} instructions", f.insts.len());
    let g = ad::grad(&f, None).unwrap();
    assert!(
        g.insts.len() <= 3 * f.insts.len(),
        "{} instructions in the gradient",
        g.insts.len()
    );
    let x: Vec<f64> = (0..n).map(|i| ((i % 17) as f64 - 8.0) / 8.0).collect();
    let out = run(&g, std::slice::from_ref(&x));
    for k in [0, 1, n / 2, n - 1] {
        let mut want = 0.0;
        if k + 1 < n {
            want += -400.0 * x[k] * (x[k + 1] - x[k] * x[k]) - 2.0 * (1.0 - x[k]);
        }
        if k > 0 {
            want += 200.0 * (x[k] - x[k - 1] * x[k - 1]);
        }
        assert!(
            (out[1][k] - want).abs() <= 1e-12 * want.abs().max(1.0),
            "x[{k}]: {} vs {want}",
            out[1][k]
        );
    }
}

/// The gradient of `sum(op(x))` (or `sum(atan2(x, z))`) at the given points.
fn gradient_at(op: Op, points: &[f64], z: Option<&[f64]>) -> Vec<f64> {
    let b = Builder::new("at");
    let x = b.param("x", &[points.len()]);
    let y = match z {
        Some(_) => {
            let zv = b.param_with("z", Type::f64(&[points.len()]), Role::Data, None);
            b.op(op, &[x.value(), zv.value()])
        }
        None => b.op(op, &[x.value()]),
    };
    let f = b.finish(&[y.sum()]).unwrap();
    let mut inputs = vec![points.to_vec()];
    inputs.extend(z.map(|z| z.to_vec()));
    run(&ad::grad(&f, None).unwrap(), &inputs)[1].clone()
}

#[test]
fn conventions_at_the_ends_of_domains() {
    // asin'(±1) = inf and acos'(±1) = -inf, as sqrt'(0) = inf; NaN outside [-1, 1].
    let g = gradient_at(Op::Unary(Unary::Asin), &[1.0, -1.0, 0.0, 2.0], None);
    assert_eq!(g[..3], [f64::INFINITY, f64::INFINITY, 1.0]);
    assert!(g[3].is_nan());
    let g = gradient_at(Op::Unary(Unary::Acos), &[1.0, -1.0, 0.0], None);
    assert_eq!(g, [f64::NEG_INFINITY, f64::NEG_INFINITY, -1.0]);
    // erf'(0) = 2/sqrt(pi); atan'(inf) = 0.
    let g = gradient_at(Op::Unary(Unary::Erf), &[0.0], None);
    assert_eq!(g, [std::f64::consts::FRAC_2_SQRT_PI]);
    let g = gradient_at(Op::Unary(Unary::Atan), &[f64::INFINITY], None);
    assert_eq!(g, [0.0]);
    // atan2: d/dy = x / (x^2 + y^2), NaN at the origin (as JAX), and the same on both sides
    // of the cut along the negative x axis.
    let atan2 = Op::Binary(adjit::ir::Binary::Atan2);
    let g = gradient_at(
        atan2.clone(),
        &[0.0, 1e-9, -1e-9, 3.0],
        Some(&[0.0, -1.0, -1.0, 4.0]),
    );
    assert!(g[0].is_nan());
    assert_eq!(g[1], g[2]);
    assert!((g[1] + 1.0).abs() < 1e-15);
    assert!((g[3] - 4.0 / 25.0).abs() < 1e-16);
}
