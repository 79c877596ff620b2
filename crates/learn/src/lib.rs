//! Training Leadroute's conversion model (线索评分模型) and saying how good it is before anyone
//! uses it.
//!
//! A [`Table`] holds one example per closed lead: its fields as they were at intake and
//! whether it was won. [`train`] checks there are enough of each outcome, encodes the fields
//! as indicators ([`encode`]), picks the regularisation by k-fold cross-validation, measures
//! a model trained on the older (or a stratified) part against the rest, and fits the final
//! model on everything. The result is an [`engine::ModelSpec`] — what routing scores with —
//! and an [`Evaluation`]. Pure and deterministic: same table and options, same model.

mod encode;
mod logistic;
pub mod metrics;
pub mod table;

use serde::{Deserialize, Serialize};

pub use metrics::{CalibrationBin, Metrics};
pub use table::{Cell, Kind, Table};

use encode::{Code, Encoder};

/// How many examples training needs at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minimum {
    pub closed: usize,
    /// Won and lost each.
    pub each: usize,
}

impl Default for Minimum {
    fn default() -> Minimum {
        Minimum {
            closed: 200,
            each: 40,
        }
    }
}

/// Which examples the holdout tests on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Split {
    /// Train on the older part, test on the newest `test` fraction.
    Time { test: f64 },
    /// A random `test` fraction of each outcome (seeded).
    Stratified { test: f64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub split: Split,
    pub folds: usize,
    pub seed: u64,
    /// The zone arrival hour and weekday were read in; stored with the model.
    pub time_zone: String,
    pub minimum: Minimum,
    /// Regularisation strengths tried (larger: weights pulled harder towards zero).
    pub lambdas: Vec<f64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            split: Split::Time { test: 0.2 },
            folds: 5,
            seed: 42,
            time_zone: "Asia/Shanghai".to_owned(),
            minimum: Minimum::default(),
            lambdas: vec![0.3, 3.0, 30.0],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training needs at least {} closed leads with {} won and {} lost; there are {closed} ({won} won, {lost} lost): {}",
        minimum.closed, minimum.each, minimum.each, shortfall(*closed, *won, *lost, minimum)
    )]
    NotEnough {
        closed: usize,
        won: usize,
        lost: usize,
        minimum: Minimum,
    },
    #[error("no field has a value that repeats often enough to learn from")]
    NoFeatures,
}

fn shortfall(closed: usize, won: usize, lost: usize, minimum: &Minimum) -> String {
    let mut needs = Vec::new();
    if closed < minimum.closed {
        needs.push(format!("{} more closed", minimum.closed - closed));
    }
    if won < minimum.each {
        needs.push(format!("{} more won", minimum.each - won));
    }
    if lost < minimum.each {
        needs.push(format!("{} more lost", minimum.each - lost));
    }
    format!("{} needed", needs.join(", "))
}

/// A regularisation strength and how it did in cross-validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaTried {
    pub lambda: f64,
    pub log_loss: f64,
    pub auc: f64,
}

/// The k-fold result for the strength chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub auc_mean: f64,
    pub auc_sd: f64,
    pub log_loss_mean: f64,
}

/// A field of the final model and how much it moves a lead's odds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldSummary {
    pub field: String,
    pub kind: String,
    /// Levels with a weight of their own (bins for numbers).
    pub levels: usize,
    /// The largest weight minus the smallest, in log-odds: 0 for a field that changes nothing.
    pub spread: f64,
}

/// One level of the final model with its weight and how many examples had it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelSummary {
    pub field: String,
    pub value: String,
    pub weight: f64,
    pub count: usize,
}

/// How good the model is, measured before it is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// `logistic_regression`.
    pub method: String,
    pub examples: usize,
    pub won: usize,
    pub lost: usize,
    pub split: Split,
    pub train: usize,
    pub test: usize,
    /// Arrival key of the first test example (time split).
    pub test_from: Option<i64>,
    /// The strength chosen: the lowest cross-validated log loss.
    pub lambda: f64,
    pub lambdas: Vec<LambdaTried>,
    pub holdout: Metrics,
    pub cross_validation: CrossValidation,
    pub fields: Vec<FieldSummary>,
    /// The twenty levels with the largest weights.
    pub top_levels: Vec<LevelSummary>,
    pub minimum: Minimum,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trained {
    pub spec: engine::ModelSpec,
    pub evaluation: Evaluation,
}

/// Trains and evaluates. Refuses too few examples of either outcome.
pub fn train(table: &Table, options: &Options) -> Result<Trained, TrainError> {
    let closed = table.examples.len();
    let won = table.won();
    let lost = closed - won;
    let minimum = options.minimum;
    if closed < minimum.closed || won < minimum.each || lost < minimum.each {
        return Err(TrainError::NotEnough {
            closed,
            won,
            lost,
            minimum,
        });
    }
    let mut random = SplitMix(options.seed);
    let (train_rows, test_rows) = split(table, options.split, &mut random);

    // Strength: k-fold on the training part, lowest log loss wins (ties: the stronger).
    let folds = stratified_folds(table, &train_rows, options.folds.max(2), &mut random);
    let mut lambdas = Vec::new();
    let mut chosen: Option<(f64, Vec<f64>, Vec<f64>)> = None;
    for &lambda in &options.lambdas {
        let results = cross_validate(table, &train_rows, &folds, lambda);
        let log_losses: Vec<f64> = results.iter().map(|(loss, _)| *loss).collect();
        let aucs: Vec<f64> = results.iter().map(|(_, auc)| *auc).collect();
        let tried = LambdaTried {
            lambda,
            log_loss: mean(&log_losses),
            auc: mean(&aucs),
        };
        if chosen
            .as_ref()
            .is_none_or(|(_, losses, _)| tried.log_loss <= mean(losses))
        {
            chosen = Some((lambda, log_losses, aucs));
        }
        lambdas.push(tried);
    }
    let (lambda, fold_losses, fold_aucs) = chosen.ok_or(TrainError::NoFeatures)?;

    // Holdout: fitted on the training part only, encoder included.
    let encoder = Encoder::fit(table, &train_rows);
    if encoder.width == 0 {
        return Err(TrainError::NoFeatures);
    }
    let fitted = logistic::fit(&encoder.design(table, &train_rows), encoder.width, lambda);
    let test = encoder.design(table, &test_rows);
    let scores: Vec<f64> = (0..test.rows())
        .map(|row| fitted.predict(test.row(row)))
        .collect();
    let training_rate = train_rows
        .iter()
        .filter(|row| table.examples[**row].won)
        .count() as f64
        / train_rows.len().max(1) as f64;
    let holdout = Metrics::of(&scores, &test.labels, training_rate);

    // The model itself: everything.
    let all: Vec<usize> = (0..closed).collect();
    let encoder = Encoder::fit(table, &all);
    let design = encoder.design(table, &all);
    let model = logistic::fit(&design, encoder.width, lambda);
    let spec = encoder.to_spec(table, model.intercept, &model.weights, &options.time_zone);
    let (fields, top_levels) = summarise(table, &encoder, &design, &model.weights);

    let evaluation = Evaluation {
        method: "logistic_regression".to_owned(),
        examples: closed,
        won,
        lost,
        split: options.split,
        train: train_rows.len(),
        test: test_rows.len(),
        test_from: match options.split {
            Split::Time { .. } => test_rows.iter().map(|row| table.examples[*row].at).min(),
            Split::Stratified { .. } => None,
        },
        lambda,
        lambdas,
        holdout,
        cross_validation: CrossValidation {
            folds: folds.len(),
            auc_mean: mean(&fold_aucs),
            auc_sd: sd(&fold_aucs),
            log_loss_mean: mean(&fold_losses),
        },
        fields,
        top_levels,
        minimum,
    };
    Ok(Trained { spec, evaluation })
}

/// Each fold's (log loss, AUC) for a model fitted on the other folds.
fn cross_validate(
    table: &Table,
    rows: &[usize],
    folds: &[Vec<usize>],
    lambda: f64,
) -> Vec<(f64, f64)> {
    let one = |fold: usize| {
        let held: &[usize] = &folds[fold];
        let mut in_fold = vec![false; table.examples.len()];
        for row in held {
            in_fold[*row] = true;
        }
        let training: Vec<usize> = rows.iter().copied().filter(|row| !in_fold[*row]).collect();
        let encoder = Encoder::fit(table, &training);
        let fitted = logistic::fit(&encoder.design(table, &training), encoder.width, lambda);
        let test = encoder.design(table, held);
        let scores: Vec<f64> = (0..test.rows())
            .map(|row| fitted.predict(test.row(row)))
            .collect();
        (
            metrics::log_loss(&scores, &test.labels),
            metrics::auc(&scores, &test.labels),
        )
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = vec![(0.0, 0.0); folds.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(folds.len()))
            .map(|worker| {
                let one = &one;
                scope.spawn(move || {
                    (worker..folds.len())
                        .step_by(workers)
                        .map(|fold| (fold, one(fold)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (fold, result) in handle.join().unwrap_or_default() {
                results[fold] = result;
            }
        }
    });
    results
}

fn split(table: &Table, split: Split, random: &mut SplitMix) -> (Vec<usize>, Vec<usize>) {
    match split {
        Split::Time { test } => {
            let mut order: Vec<usize> = (0..table.examples.len()).collect();
            order.sort_by_key(|row| (table.examples[*row].at, *row));
            let cut = order.len() - test_count(order.len(), test);
            let test_rows = order.split_off(cut);
            (order, test_rows)
        }
        Split::Stratified { test } => {
            let (mut train_rows, mut test_rows) = (Vec::new(), Vec::new());
            for outcome in [false, true] {
                let mut rows: Vec<usize> = (0..table.examples.len())
                    .filter(|row| table.examples[*row].won == outcome)
                    .collect();
                random.shuffle(&mut rows);
                let held = test_count(rows.len(), test);
                test_rows.extend_from_slice(&rows[..held]);
                train_rows.extend_from_slice(&rows[held..]);
            }
            train_rows.sort_unstable();
            test_rows.sort_unstable();
            (train_rows, test_rows)
        }
    }
}

fn test_count(rows: usize, fraction: f64) -> usize {
    ((rows as f64 * fraction.clamp(0.05, 0.5)).round() as usize).clamp(1, rows.saturating_sub(1))
}

fn stratified_folds(
    table: &Table,
    rows: &[usize],
    folds: usize,
    random: &mut SplitMix,
) -> Vec<Vec<usize>> {
    let mut assigned = vec![Vec::new(); folds];
    let mut next = 0;
    for outcome in [false, true] {
        let mut members: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|row| table.examples[*row].won == outcome)
            .collect();
        random.shuffle(&mut members);
        for row in members {
            assigned[next % folds].push(row);
            next += 1;
        }
    }
    assigned
}

fn summarise(
    table: &Table,
    encoder: &Encoder,
    design: &encode::Design,
    weights: &[f64],
) -> (Vec<FieldSummary>, Vec<LevelSummary>) {
    let mut counts = vec![0usize; encoder.width];
    for index in &design.indices {
        counts[*index as usize] += 1;
    }
    let mut fields = Vec::new();
    let mut levels = Vec::new();
    for (column, code) in encoder.codes.iter().enumerate() {
        let name = &table.columns[column].name;
        let mut mine: Vec<(u32, String)> = Vec::new();
        match code {
            Code::Category { of, other, missing } => {
                for (id, index) in of.iter().enumerate() {
                    if let Some(index) = index {
                        mine.push((*index, table.columns[column].value(id as u32).to_owned()));
                    }
                }
                mine.extend(other.map(|index| (index, "(other)".to_owned())));
                mine.extend(missing.map(|index| (index, "(missing)".to_owned())));
            }
            Code::Number {
                edges,
                first,
                missing,
            } => {
                for bin in 0..=edges.len() {
                    mine.push((first + bin as u32, engine::model::bin_label(edges, bin)));
                }
                mine.extend(missing.map(|index| (index, "(missing)".to_owned())));
            }
            Code::Set { of } => {
                for (id, index) in of.iter().enumerate() {
                    if let Some(index) = index {
                        mine.push((*index, table.columns[column].value(id as u32).to_owned()));
                    }
                }
            }
        }
        let own: Vec<f64> = mine
            .iter()
            .map(|(index, _)| weights[*index as usize])
            .collect();
        let high = own.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let low = own.iter().copied().fold(f64::INFINITY, f64::min);
        let spread = if own.is_empty() {
            0.0
        } else if matches!(code, Code::Set { .. }) {
            // A member is present or not: its weight against zero.
            high.max(0.0) - low.min(0.0)
        } else {
            high - low
        };
        fields.push(FieldSummary {
            field: name.clone(),
            kind: table.columns[column].kind.name().to_owned(),
            levels: mine.len(),
            spread: round(spread),
        });
        levels.extend(mine.into_iter().map(|(index, value)| LevelSummary {
            field: name.clone(),
            value,
            weight: round(weights[index as usize]),
            count: counts[index as usize],
        }));
    }
    fields.sort_by(|a, b| b.spread.total_cmp(&a.spread).then(a.field.cmp(&b.field)));
    levels.sort_by(|a, b| {
        b.weight
            .abs()
            .total_cmp(&a.weight.abs())
            .then(a.field.cmp(&b.field))
            .then(a.value.cmp(&b.value))
    });
    levels.truncate(20);
    (fields, levels)
}

fn round(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn sd(values: &[f64]) -> f64 {
    let center = mean(values);
    (values.iter().map(|v| (v - center).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt()
}

/// A small seeded generator (SplitMix64), so a split is the same on every machine.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            items.swap(index, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::model::Raw;

    /// A synthetic world: source and size decide the odds, noise aside.
    fn world(rows: usize) -> Table {
        let mut table = Table::new([
            ("source".to_owned(), Kind::Category),
            ("company_size".to_owned(), Kind::Number),
            ("tags".to_owned(), Kind::Set),
        ]);
        let mut random = SplitMix(7);
        let sources = ["展会", "官网", "广告"];
        for row in 0..rows {
            let source = sources[(random.next() % 3) as usize];
            let size = (random.next() % 1000) as f64;
            let vip = random.next().is_multiple_of(5);
            let logit = match source {
                "展会" => 1.0,
                "官网" => 0.0,
                _ => -1.0,
            } + if size > 500.0 { 0.8 } else { -0.4 }
                + if vip { 1.2 } else { 0.0 };
            let p = engine::model::sigmoid(logit);
            let won = (random.next() as f64 / u64::MAX as f64) < p;
            let tags: Vec<String> = if vip { vec!["vip".into()] } else { vec![] };
            table.push(
                [Raw::Text(source), Raw::Number(size), Raw::Set(&tags)],
                won,
                row as i64,
            );
        }
        table
    }

    #[test]
    fn it_learns_what_decides_the_outcome() {
        let trained = train(&world(4000), &Options::default()).expect("valid test data");
        let evaluation = &trained.evaluation;
        assert!(evaluation.holdout.auc > 0.7, "{:?}", evaluation.holdout.auc);
        assert!(evaluation.holdout.log_loss < evaluation.holdout.baseline_log_loss);
        assert!(evaluation.holdout.lift_top_decile > 1.2);
        assert_eq!(evaluation.holdout.calibration.len(), 10);
        assert_eq!(evaluation.train + evaluation.test, 4000);
        assert_eq!(evaluation.test, 800);
        let fields: Vec<&str> = evaluation.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields[0], "source", "{fields:?}");
        // Same input, same model.
        assert_eq!(
            trained,
            train(&world(4000), &Options::default()).expect("valid test data")
        );
    }

    #[test]
    fn too_few_outcomes_are_refused_with_what_is_missing() {
        let mut table = world(150);
        table
            .examples
            .iter_mut()
            .for_each(|example| example.won = false);
        let error = train(&table, &Options::default()).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "training needs at least 200 closed leads with 40 won and 40 lost; there are 150 (0 won, 150 lost): 50 more closed, 40 more won needed"
        );
    }

    #[test]
    fn the_trained_spec_scores_as_the_fit_predicts() {
        let table = world(1000);
        let trained = train(&table, &Options::default()).expect("valid test data");
        let catalogue = engine::FieldCatalogue::default();
        let model =
            engine::WinModel::compile(&trained.spec, &catalogue, 1).expect("valid test data");
        assert!(model.dropped.is_empty());
        let lead = engine::Lead {
            source: Some("展会".into()),
            company_size: Some(900.0),
            tags: vec!["vip".into()],
            ..engine::Lead::default()
        };
        let view = engine::field::LeadView::new(&lead, &catalogue);
        let score = model.score(&view, chrono_now());
        let all: Vec<usize> = (0..table.examples.len()).collect();
        let encoder = Encoder::fit(&table, &all);
        let mut active = Vec::new();
        let tags = vec!["vip".to_owned()];
        let mut probe = table.clone();
        probe.push(
            [Raw::Text("展会"), Raw::Number(900.0), Raw::Set(&tags)],
            true,
            0,
        );
        encoder.encode(&probe.examples[1000].cells, &mut active);
        let design = encoder.design(&table, &all);
        let fit = logistic::fit(&design, encoder.width, trained.evaluation.lambda);
        assert!((fit.predict(&active) - score.probability).abs() < 1e-9);
    }

    fn chrono_now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }
}
