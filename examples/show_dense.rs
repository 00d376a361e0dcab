//! Prints the dense derivative functions of small models (a debugging aid).
fn main() {
    let f = adjit::models::bratu_n(5);
    println!(
        "{}",
        adjit::ad::jacobian(&f, None, adjit::ad::JacobianMode::Forward).unwrap()
    );
    println!(
        "{}",
        adjit::ad::hessian(&adjit::models::rosenbrock(5), None).unwrap()
    );
}
