//! Batch assignment speed: planning a backlog exactly (min-cost flow), beside the floor of
//! reading every lead–rep weight once, and the arrival-order greedy on the same batch. Prints
//! the greedy's optimality gap. Run with `cargo bench -p engine --bench batch`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::batch::solve::{Bounds, Problem, solve};

/// SplitMix64: a fixed workload without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `leads` leads over `reps` reps in teams of `team` reps; a lead is eligible for its team (one
/// in ten for a second team too). Its value is a win probability times a deal size; a rep's
/// fit is their conversion on the lead's segment (one of six), around their own level. Caps
/// leave each rep 60–140% of an even share, and the fairness band is ±10% around each rep's
/// share of the leads it is eligible for.
fn workload(leads: usize, reps: usize, team: usize, seed: u64) -> Problem {
    let mut random = Random(seed);
    let teams = reps / team;
    let level: Vec<f64> = (0..reps).map(|_| 0.5 + random.unit()).collect();
    let segment_fit: Vec<[f64; 6]> = (0..reps)
        .map(|rep| std::array::from_fn(|_| level[rep] * (0.6 + 0.8 * random.unit())))
        .collect();
    let mut expected = vec![0.0f64; reps];
    let edges: Vec<Vec<(usize, i64)>> = (0..leads)
        .map(|_| {
            let home = (random.next() % teams as u64) as usize;
            let mut eligible: Vec<usize> = (home * team..(home + 1) * team).collect();
            if random.unit() < 0.1 && teams > 1 {
                let other = (home + 1 + (random.next() % (teams as u64 - 1)) as usize) % teams;
                eligible.extend(other * team..(other + 1) * team);
            }
            let segment = (random.next() % 6) as usize;
            let value = random.unit() * (1000.0 + 9000.0 * random.unit());
            for rep in &eligible {
                expected[*rep] += 1.0 / eligible.len() as f64;
            }
            eligible
                .into_iter()
                .map(|rep| (rep, (value * segment_fit[rep][segment]).round() as i64))
                .collect()
        })
        .collect();
    let even = leads as f64 / reps as f64;
    let bounds = (0..reps)
        .map(|rep| {
            let cap = (even * (0.6 + 0.8 * random.unit())).ceil() as u32;
            let upper = ((expected[rep] * 1.1).ceil() as u32).min(cap);
            let lower = ((expected[rep] * 0.9).floor() as u32).min(upper);
            Bounds { lower, upper }
        })
        .collect();
    Problem {
        edges,
        reps: bounds,
    }
}

fn floor(problem: &Problem) -> i64 {
    problem
        .edges
        .iter()
        .map(|edges| edges.iter().map(|(_, weight)| *weight).max().unwrap_or(0))
        .sum()
}

fn benches(c: &mut Criterion) {
    for (name, leads, reps, team) in [("1000x50", 1000, 50, 10), ("10000x500", 10_000, 500, 50)] {
        let problem = workload(leads, reps, team, 42);
        let solution = solve(&problem);
        let greedy = problem.greedy();
        println!(
            "{name}: plan weight {} (lower bounds met {}), greedy {} (met {}): greedy gap {:.2}%, placed {} / {}",
            solution.weight,
            solution.lower_met,
            greedy.weight,
            greedy.lower_met,
            100.0 * (solution.weight - greedy.weight) as f64 / solution.weight.max(1) as f64,
            solution
                .assignment
                .iter()
                .filter(|rep| rep.is_some())
                .count(),
            leads
        );
        c.bench_function(&format!("batch/{name}/floor_read_weights"), |b| {
            b.iter(|| floor(black_box(&problem)))
        });
        c.bench_function(&format!("batch/{name}/greedy"), |b| {
            b.iter(|| black_box(&problem).greedy())
        });
        c.bench_function(&format!("batch/{name}/optimal"), |b| {
            b.iter(|| solve(black_box(&problem)))
        });
    }
}

criterion_group! {
    name = engine;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(engine);
