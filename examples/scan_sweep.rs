//! Why loops stay loops: compile time and time per f+grad call of the coupled pendulums,
//! unrolled and as one `scan`, from 100 to 100,000 RK4 steps (dt = 1 / steps).
//!
//! `cargo run --release --example scan_sweep [-- --max-unrolled STEPS]` prints a Markdown table
//! and writes `docs/scan_sweep.svg`. Compile time is text to callable f+grad: parse, grad,
//! compile. The unrolled model is built up to `--max-unrolled` steps (default 10,000).

use adjit::call::Executor;
use adjit::ir::{parse, Checkpoint, Func};
use adjit::{ad, jit, models};
use plotters::prelude::*;
use std::time::{Duration, Instant};

const STEPS: [usize; 4] = [100, 1_000, 10_000, 100_000];

struct Point {
    steps: usize,
    compile: f64,
    call: f64,
    workspace: u64,
}

/// Parses, differentiates and compiles `f`'s text, then times f+grad calls for about 0.5 s.
fn measure(f: &Func) -> Point {
    let text = f.to_string();
    let start = Instant::now();
    let parsed = parse(&text).expect("the model reads back");
    let g = ad::grad(&parsed, None).expect("differentiates");
    let compiled = jit::compile(&g).expect("compiles");
    let compile = start.elapsed().as_secs_f64();
    let inputs = adjit::inputs::defaults(&g, 0);
    let slices: Vec<&[f64]> = inputs.iter().map(|x| x.as_slice()).collect();
    let mut outs: Vec<Vec<f64>> = g
        .result_types()
        .iter()
        .map(|t| vec![0.0; t.numel()])
        .collect();
    let mut ws = compiled.workspace();
    let mut calls = 0u32;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) || calls < 3 {
        let mut o: Vec<&mut [f64]> = outs.iter_mut().map(|x| x.as_mut_slice()).collect();
        compiled.call(&mut ws, &slices, &mut o).expect("runs");
        calls += 1;
    }
    Point {
        steps: f.insts.len(),
        compile,
        call: start.elapsed().as_secs_f64() / f64::from(calls),
        workspace: compiled.workspace_bytes(),
    }
}

fn main() {
    let mut max_unrolled = 10_000;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--max-unrolled") {
        max_unrolled = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("--max-unrolled takes a number of steps");
                std::process::exit(2)
            });
    }
    let (mut scanned, mut unrolled) = (Vec::new(), Vec::new());
    println!("| steps | scan: compile | scan: f+grad call | scan: workspace | unrolled: compile | unrolled: f+grad call | unrolled: workspace |");
    println!("|---|---|---|---|---|---|---|");
    for &n in &STEPS {
        let dt = 1.0 / n as f64;
        let f = models::pendulum_scan_of("pendulum_scan", n, dt, Checkpoint::Auto);
        let s = Point {
            steps: n,
            ..measure(&f)
        };
        let u = (n <= max_unrolled).then(|| Point {
            steps: n,
            ..measure(&models::pendulum_unrolled_of("pendulum", n, dt))
        });
        let show = |p: &Option<Point>| match p {
            Some(p) => format!(
                "{:.1} ms | {:.3} ms | {} KiB",
                p.compile * 1e3,
                p.call * 1e3,
                p.workspace / 1024
            ),
            None => "not built | | ".to_string(),
        };
        println!(
            "| {n} | {:.1} ms | {:.3} ms | {} KiB | {} |",
            s.compile * 1e3,
            s.call * 1e3,
            s.workspace / 1024,
            show(&u)
        );
        scanned.push(s);
        unrolled.extend(u);
    }
    if let Err(e) = plot(&scanned, &unrolled, "docs/scan_sweep.svg") {
        eprintln!("docs/scan_sweep.svg: {e}");
        std::process::exit(1);
    }
    println!("\nwrote docs/scan_sweep.svg");
}

/// Two log-log panels: compile time and time per call against steps.
fn plot(
    scanned: &[Point],
    unrolled: &[Point],
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    type Series = (&'static str, fn(&Point) -> f64);
    let series: [Series; 2] = [
        ("text to callable f+grad (s)", |p| p.compile),
        ("one f+grad call (s)", |p| p.call),
    ];
    for (panel, (title, y)) in panels.iter().zip(series) {
        let all = scanned.iter().chain(unrolled).map(y);
        let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (50f64..200_000f64).log_scale(),
                ((lo / 2.0)..(hi * 2.0)).log_scale(),
            )?;
        chart.configure_mesh().x_desc("RK4 steps").draw()?;
        for (name, points, color) in [("scan", scanned, &BLUE), ("unrolled", unrolled, &RED)] {
            let line: Vec<(f64, f64)> = points.iter().map(|p| (p.steps as f64, y(p))).collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    line.clone(),
                    color.stroke_width(2),
                )))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}
