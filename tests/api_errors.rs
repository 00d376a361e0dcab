//! The Rust API at its boundary: every entry that takes a `Func` verifies it first, so an
//! invalid function (from `Builder::finish_unverified`, or assembled by hand) is an error, never
//! a panic; and the Builder, the reader and the verifier refuse the same over-limit shapes with
//! the same message.

use adjit::ad::{self, AdError};
use adjit::ir::{self, Binary, Builder, Dims, Func, Op, Type, Value};
use adjit::{interp, jit, simplify};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `x: f64[3] -> sum(exp(x))`, unverified so that tests can break it.
fn valid() -> Func {
    let b = Builder::new("f");
    let x = b.param("x", &[3]);
    let s = x.exp().sum();
    b.finish_unverified(&[s.value()])
}

/// Invalid functions, each broken in one way, with a fragment of the verifier's message.
fn broken() -> Vec<(&'static str, Func, &'static str)> {
    let mut wrong_type = valid();
    wrong_type.insts[0].ty = Type::scalar();
    let mut wrong_result_type = valid();
    wrong_result_type.insts[1].ty = Type::f64(&[3]);
    let mut out_of_range = valid();
    out_of_range.insts[0].args = vec![Value(99)].into();
    let mut wrong_arity = valid();
    wrong_arity.insts[0].op = Op::Binary(Binary::Add);
    let mut no_such_result = valid();
    no_such_result.results = vec![Value(42)];
    let mut used_before = valid();
    used_before.insts[0].args = vec![Value(2)].into();
    let mut huge = valid();
    huge.params[0].ty = Type::scalar().with_shape(Dims::new(&[100000, 100000]));
    vec![
        (
            "wrong declared type",
            wrong_type,
            "declared type f64[] but exp gives f64[3]",
        ),
        (
            "wrong result type",
            wrong_result_type,
            "declared type f64[3]",
        ),
        (
            "operand out of range",
            out_of_range,
            "not a value of this function",
        ),
        ("wrong arity", wrong_arity, "takes 2 operands"),
        ("result out of range", no_such_result, "does not exist"),
        (
            "use before definition",
            used_before,
            "used before its definition",
        ),
        (
            "over-limit parameter",
            huge,
            "more than 4294967296 elements",
        ),
    ]
}

/// Runs `f` and fails the test if it panics.
fn no_panic<T>(name: &str, api: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{api} panicked on {name}"))
}

fn check_invalid(name: &str, api: &str, r: Result<Func, AdError>, want: &str) {
    match r {
        Err(AdError::Invalid(e)) => assert!(
            e.issues.iter().any(|i| i.message.contains(want)),
            "{api} on {name}: {e} lacks {want:?}"
        ),
        other => panic!("{api} on {name}: expected AdError::Invalid, got {other:?}"),
    }
}

#[test]
fn transforms_refuse_invalid_functions() {
    for (name, f, want) in broken() {
        let r = no_panic(name, "grad", || ad::grad(&f, None));
        check_invalid(name, "grad", r, want);
        let r = no_panic(name, "hvp", || ad::hvp(&f, None));
        check_invalid(name, "hvp", r, want);
        let r = no_panic(name, "vjp", || ad::vjp(&f, None));
        check_invalid(name, "vjp", r, want);
        let r = no_panic(name, "grad with wrt", || ad::grad(&f, Some(&["x"])));
        check_invalid(name, "grad with wrt", r, want);
    }
}

#[test]
fn simplify_refuses_invalid_functions() {
    for (name, f, want) in broken() {
        let e = no_panic(name, "simplify", || simplify::simplify(&f))
            .expect_err("an invalid function must not simplify");
        assert!(
            e.issues.iter().any(|i| i.message.contains(want)),
            "simplify on {name}: {e} lacks {want:?}"
        );
    }
}

#[test]
fn executors_refuse_invalid_functions() {
    for (name, f, _) in broken() {
        let r = no_panic(name, "interp::eval", || interp::eval(&f, &[vec![0.5; 3]]));
        assert!(r.is_err(), "interp::eval accepted {name}");
        let r = no_panic(name, "jit::compile", || jit::compile(&f).map(|_| ()));
        assert!(r.is_err(), "jit::compile accepted {name}");
    }
}

#[test]
fn the_valid_function_goes_through() {
    let f = valid();
    ir::verify(&f).unwrap();
    ad::grad(&f, None).unwrap();
    ad::hvp(&f, None).unwrap();
    ad::vjp(&f, None).unwrap();
    simplify::simplify(&f).unwrap();
}

#[test]
fn invalid_is_reported_as_such() {
    let (_, f, _) = broken().remove(0);
    let e = ad::grad(&f, None).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot differentiate an invalid function: @f fails verification"),
        "{e}"
    );
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The reader's message for a parameter of type `ty`.
fn read_message(ty: &str) -> String {
    let text =
        format!("func @f(x: {ty}) -> (f64[]) {{\n    s: f64[] = const 0.0\n    return s\n}}\n");
    ir::parse(&text).expect_err("over the limits").message
}

#[test]
fn builder_and_reader_refuse_the_same_shapes() {
    let shapes: [(&[usize], &str); 3] = [
        (&[100000, 100000], "f64[100000,100000]"),
        (&[1; 9], "f64[1,1,1,1,1,1,1,1,1]"),
        (&[1 << 33], "f64[8589934592]"),
    ];
    for (shape, ty) in shapes {
        let read = read_message(ty);
        assert!(read.starts_with(&format!("type {ty} ")), "{read}");
        let built = panic_message(|| {
            Builder::new("f").param("x", shape);
        });
        assert_eq!(built, format!("adjit builder: {read}"));
        let data = panic_message(|| {
            Builder::new("f").data("x", shape);
        });
        assert_eq!(data, built);
    }
}

#[test]
fn builder_refuses_over_limit_results() {
    let b = Builder::new("f");
    let y = b.param("y", &[]);
    let huge = Op::Broadcast {
        shape: Dims::new(&[100000, 100000]),
        axes: Dims::new(&[0, 1]),
    };
    // The shape rules of `crate::ops` check the element count of every result.
    let e = b.try_op(huge, &[y.value()]).unwrap_err();
    let over = "f64[100000,100000] has more than 4294967296 elements";
    assert!(e.message.contains(over), "{e}");
    let msg = panic_message(|| {
        y.expand(&[100000, 100000], &[0, 1]);
    });
    assert!(msg.contains(over), "{msg}");
    let read = read_message("f64[100000,100000]");
    let msg = panic_message(|| {
        b.splat(0.0, &[100000, 100000]);
    });
    assert_eq!(msg, format!("adjit builder: {read}"));
    // Nothing over the limit was emitted: the function still verifies.
    b.finish(&[y]).unwrap();
}

#[test]
fn verifier_refuses_over_limit_types() {
    let mut f = valid();
    f.params[0].ty = Type::scalar().with_shape(Dims::new(&[100000, 100000]));
    let e = ir::verify(&f).unwrap_err();
    let read = read_message("f64[100000,100000]");
    assert!(
        e.issues.iter().any(|i| i.message.contains(&read)),
        "{e} lacks {read:?}"
    );
}

/// A value made before `finish` belongs to the finished function: using it with the builder
/// afterwards is refused with an error that says so, not an index out of range.
#[test]
fn values_from_before_finish_are_refused() {
    let b = adjit::ir::Builder::new("first");
    let x = b.param("x", &[3]);
    let y = (x * x).sum();
    b.finish(&[y]).unwrap();
    let err = b
        .try_op(adjit::ir::Op::Unary(adjit::ir::Unary::Sin), &[y.value()])
        .unwrap_err();
    assert!(err.message.contains("before `finish`"), "{err}");
}
