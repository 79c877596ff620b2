//! How good predicted probabilities are against outcomes: AUC, log loss, Brier score, a
//! calibration table by decile, lift in the top decile and the ROC curve.

use serde::{Deserialize, Serialize};

/// Metrics of one set of predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub examples: usize,
    pub won: usize,
    /// Area under the ROC curve: the chance a random won lead scores above a random lost one.
    pub auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    /// The same two for predicting the training win rate for everyone, to beat.
    pub baseline_log_loss: f64,
    pub baseline_brier: f64,
    /// Win rate among the top tenth by probability, over the overall win rate.
    pub lift_top_decile: f64,
    pub calibration: Vec<CalibrationBin>,
    /// (false positive rate, true positive rate), at most 101 points from (0,0) to (1,1).
    pub roc: Vec<(f64, f64)>,
}

/// One tenth of the leads by predicted probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub count: usize,
    pub predicted: f64,
    pub observed: f64,
}

const EPSILON: f64 = 1e-15;

pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let positives = labels.iter().filter(|won| **won).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // Sum of the positives' ranks, ties sharing their average rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average = (start + end + 1) as f64 / 2.0;
        rank_sum += average * order[start..end].iter().filter(|at| labels[**at]).count() as f64;
        start = end;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

pub fn log_loss(scores: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, won)| {
            let p = p.clamp(EPSILON, 1.0 - EPSILON);
            -if *won { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    total / scores.len().max(1) as f64
}

pub fn brier(scores: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(p, won)| (p - f64::from(u8::from(*won))).powi(2))
        .sum();
    total / scores.len().max(1) as f64
}

/// Leads sorted by probability, highest first, with ties in input order.
fn by_score_descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    order
}

pub fn calibration(scores: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut order = by_score_descending(scores);
    order.reverse();
    let count = order.len();
    (0..10)
        .filter_map(|decile| {
            let bin = &order[decile * count / 10..(decile + 1) * count / 10];
            (!bin.is_empty()).then(|| CalibrationBin {
                count: bin.len(),
                predicted: bin.iter().map(|at| scores[*at]).sum::<f64>() / bin.len() as f64,
                observed: bin.iter().filter(|at| labels[**at]).count() as f64 / bin.len() as f64,
            })
        })
        .collect()
}

pub fn lift_top_decile(scores: &[f64], labels: &[bool]) -> f64 {
    let order = by_score_descending(scores);
    let top = (order.len() / 10).max(1).min(order.len());
    let rate = labels.iter().filter(|won| **won).count() as f64 / labels.len().max(1) as f64;
    if rate == 0.0 || order.is_empty() {
        return 0.0;
    }
    let top_rate = order[..top].iter().filter(|at| labels[**at]).count() as f64 / top as f64;
    top_rate / rate
}

pub fn roc(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let order = by_score_descending(scores);
    let positives = labels.iter().filter(|won| **won).count().max(1) as f64;
    let negatives = (labels.len() as f64 - positives).max(1.0);
    let mut points = vec![(0.0, 0.0)];
    let (mut true_positives, mut false_positives) = (0.0, 0.0);
    for (position, at) in order.iter().enumerate() {
        if labels[*at] {
            true_positives += 1.0;
        } else {
            false_positives += 1.0;
        }
        let last_of_tie = order
            .get(position + 1)
            .is_none_or(|next| scores[*next] != scores[*at]);
        if last_of_tie {
            points.push((false_positives / negatives, true_positives / positives));
        }
    }
    if points.len() > 101 {
        let step = (points.len() - 1) as f64 / 100.0;
        points = (0..=100)
            .map(|index| points[((index as f64 * step).round() as usize).min(points.len() - 1)])
            .collect();
    }
    points
        .into_iter()
        .map(|(x, y)| (round(x), round(y)))
        .collect()
}

fn round(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

impl Metrics {
    pub fn of(scores: &[f64], labels: &[bool], training_rate: f64) -> Metrics {
        let baseline = vec![training_rate; scores.len()];
        Metrics {
            examples: scores.len(),
            won: labels.iter().filter(|won| **won).count(),
            auc: auc(scores, labels),
            log_loss: log_loss(scores, labels),
            brier: brier(scores, labels),
            baseline_log_loss: log_loss(&baseline, labels),
            baseline_brier: brier(&baseline, labels),
            lift_top_decile: lift_top_decile(scores, labels),
            calibration: calibration(scores, labels),
            roc: roc(scores, labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.9 (`roc_auc_score`, `log_loss`,
    // `brier_score_loss`) on the same arrays.
    const SCORES: [f64; 8] = [0.9, 0.8, 0.8, 0.6, 0.4, 0.3, 0.3, 0.1];
    const LABELS: [bool; 8] = [true, true, false, true, false, true, false, false];

    #[test]
    fn metrics_match_scikit_learn() {
        // roc_auc_score -> 0.75
        assert!((auc(&SCORES, &LABELS) - 0.75).abs() < 1e-12);
        // log_loss -> 0.5782001864
        assert!((log_loss(&SCORES, &LABELS) - 0.578_200_186_4).abs() < 1e-9);
        // brier_score_loss -> 0.2
        assert!((brier(&SCORES, &LABELS) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn a_perfect_ranking_has_auc_one_and_ties_count_half() {
        assert_eq!(auc(&[0.9, 0.1], &[true, false]), 1.0);
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), 0.5);
        let curve = roc(&[0.9, 0.1], &[true, false]);
        assert_eq!(curve, vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn calibration_has_ten_bins_and_lift_reads_the_top_tenth() {
        let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let labels: Vec<bool> = (0..100).map(|i| i >= 80).collect();
        let bins = calibration(&scores, &labels);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[9].observed, 1.0);
        assert_eq!(bins[0].observed, 0.0);
        assert!((lift_top_decile(&scores, &labels) - 5.0).abs() < 1e-12);
    }
}
