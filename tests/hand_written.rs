//! The hand-written gradients the benchmarks compare against are right: each agrees with
//! adjit's gradient (the interpreter's) to 1e-10, relative to the gradient's size.

#[path = "../benches/hand.rs"]
mod hand;

use adjit::{ad, interp, ir, models};

fn adjit_grad(name: &str) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let f = ir::parse(models::find(name).unwrap().text).unwrap();
    let inputs = adjit::inputs::defaults(&f, 4);
    let out = interp::eval(&ad::grad(&f, None).unwrap(), &inputs).unwrap();
    (inputs, out)
}

fn close(name: &str, value: f64, grad: &[f64], want: &[Vec<f64>]) {
    let scale = want[1]
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    assert!(
        (value - want[0][0]).abs() <= 1e-10 * want[0][0].abs().max(1.0),
        "{name}: value {value} vs {}",
        want[0][0]
    );
    for (i, (a, b)) in grad.iter().zip(&want[1]).enumerate() {
        assert!(
            (a - b).abs() <= 1e-10 * scale,
            "{name}: gradient {i}: {a} vs {b}"
        );
    }
}

#[test]
fn tiny() {
    let (x, want) = adjit_grad("tiny");
    let mut g = [0.0; 2];
    close("tiny", hand::tiny(&x[0], &mut g), &g, &want);
}

#[test]
fn rosenbrock() {
    let (x, want) = adjit_grad("rosenbrock");
    let mut g = vec![0.0; 100];
    close("rosenbrock", hand::rosenbrock(&x[0], &mut g), &g, &want);
}

#[test]
fn rosenbrock10k() {
    let (x, want) = adjit_grad("rosenbrock10k");
    let mut g = vec![0.0; 10_000];
    close("rosenbrock10k", hand::rosenbrock(&x[0], &mut g), &g, &want);
}

#[test]
fn logistic() {
    let (x, want) = adjit_grad("logistic");
    let mut g = vec![0.0; 100];
    close(
        "logistic",
        hand::logistic(&x[0], &x[1], &x[2], &mut g),
        &g,
        &want,
    );
}

#[test]
fn pendulum() {
    let (x, want) = adjit_grad("pendulum");
    let mut g = vec![0.0; 43];
    let mut p = hand::Pendulum::default();
    close(
        "pendulum",
        p.value_and_grad(&x[0], &x[1], &mut g),
        &g,
        &want,
    );
}
