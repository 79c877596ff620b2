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

/// Splits one CSV line, honouring double quotes.
fn fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for character in line.chars() {
        match character {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().expect("a field").push(character),
        }
    }
    fields
}

/// The MarketStar SDR data (`../shared/data/marketstar_sdr_leads`): five SDRs, 32,567 worked
/// leads and which converted. A rep's fit on a segment (lead source × industry) is their
/// conversion there, shrunk toward their own rate (50 leads of prior), relative to the
/// segment's; a lead's value is its segment's conversion times the mean opportunity amount.
/// The batch is the newest `size` leads never worked (stage New), among the five, each
/// within ±10% of an even share. `None` when the data is not there.
fn marketstar(size: usize) -> Option<Problem> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/marketstar_sdr_leads");
    let leads = std::fs::read_to_string(dir.join("Leads.csv")).ok()?;
    let opportunities = std::fs::read_to_string(dir.join("Opportunities.csv")).ok()?;
    let amounts: Vec<f64> = opportunities
        .lines()
        .skip(1)
        .filter_map(|line| fields(line).get(5)?.parse().ok())
        .collect();
    let mean_amount = amounts.iter().sum::<f64>() / amounts.len().max(1) as f64;
    let reps = ["1", "2", "3", "4", "5"];
    let rows: Vec<Vec<String>> = leads
        .lines()
        .skip(1)
        .map(fields)
        .filter(|row| row.len() == 11)
        .collect();
    let segment = |row: &[String]| format!("{}|{}", row[9], row[2]);
    let mut by_segment: std::collections::HashMap<String, (f64, f64)> = Default::default();
    let mut by_rep: std::collections::HashMap<(String, String), (f64, f64)> = Default::default();
    let mut rep_rate: std::collections::HashMap<String, (f64, f64)> = Default::default();
    for row in rows.iter().filter(|row| reps.contains(&row[7].as_str())) {
        let won = if row[8].is_empty() { 0.0 } else { 1.0 };
        let add = |entry: &mut (f64, f64)| {
            entry.0 += won;
            entry.1 += 1.0;
        };
        add(by_segment.entry(segment(row)).or_default());
        add(by_rep.entry((row[7].clone(), segment(row))).or_default());
        add(rep_rate.entry(row[7].clone()).or_default());
    }
    let overall = by_segment
        .values()
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let overall = overall.0 / overall.1;
    let mut fresh: Vec<&Vec<String>> = rows.iter().filter(|row| row[5] == "New").collect();
    fresh.sort_by(|a, b| {
        (&a[6], a[0].parse::<u64>().unwrap_or(0)).cmp(&(&b[6], b[0].parse().unwrap_or(0)))
    });
    let fresh = &fresh[fresh.len().saturating_sub(size)..];
    let edges: Vec<Vec<(usize, i64)>> = fresh
        .iter()
        .map(|row| {
            let key = segment(row);
            let (won, seen) = by_segment.get(&key).copied().unwrap_or((0.0, 0.0));
            let segment_rate = (won + 20.0 * overall) / (seen + 20.0);
            reps.iter()
                .enumerate()
                .map(|(rep, id)| {
                    let (rw, rn) = rep_rate[*id];
                    let own = rw / rn;
                    let (sw, sn) = by_rep
                        .get(&(id.to_string(), key.clone()))
                        .copied()
                        .unwrap_or((0.0, 0.0));
                    let rate = (sw + 50.0 * own * segment_rate / overall) / (sn + 50.0);
                    // Expected amount from this rep: value (segment rate × amount) × fit.
                    let worth = segment_rate * mean_amount * (rate / segment_rate);
                    (rep, (worth * 1000.0).round() as i64)
                })
                .collect()
        })
        .collect();
    let even = fresh.len() as f64 / reps.len() as f64;
    let bounds = reps
        .iter()
        .map(|_| Bounds {
            lower: (even * 0.9).floor() as u32,
            upper: (even * 1.1).ceil() as u32,
        })
        .collect();
    Some(Problem {
        edges,
        reps: bounds,
    })
}

/// Round robin in arrival order, the usual SDR rotation: its total weight.
fn round_robin(problem: &Problem) -> i64 {
    problem
        .edges
        .iter()
        .enumerate()
        .map(|(lead, edges)| edges[lead % edges.len()].1)
        .sum()
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

fn realistic(c: &mut Criterion) {
    for size in [1000, 10_000] {
        let Some(problem) = marketstar(size) else {
            println!("marketstar: ../shared/data/marketstar_sdr_leads is not here; skipped");
            return;
        };
        let solution = solve(&problem);
        let greedy = problem.greedy();
        let rotation = round_robin(&problem);
        let gap =
            |other: i64| 100.0 * (solution.weight - other) as f64 / solution.weight.max(1) as f64;
        println!(
            "marketstar {size}x5: plan {} (lower bounds met {}), greedy {} (gap {:.2}%), round robin {} (gap {:.2}%), placed {} / {}",
            solution.weight,
            solution.lower_met,
            greedy.weight,
            gap(greedy.weight),
            rotation,
            gap(rotation),
            solution
                .assignment
                .iter()
                .filter(|rep| rep.is_some())
                .count(),
            problem.edges.len()
        );
        c.bench_function(&format!("batch/marketstar_{size}x5/optimal"), |b| {
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
    targets = benches, realistic
}
criterion_main!(engine);
