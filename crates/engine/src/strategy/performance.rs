//! Performance statistics as comparable numbers, and weights derived from them: conversion
//! smoothed toward the candidates' mean, response speed, and feedback.

use super::{Pick, WeightSource};

/// Closed leads worth of prior pulling a rep's conversion toward the mean, so a rep with two
/// lucky wins does not outrank a steady performer.
const PRIOR_LEADS: f64 = 10.0;
/// A response this fast scores 0.5; faster approaches 1.
const RESPONSE_REFERENCE_SECS: f64 = 3600.0;

/// Per-candidate statistics in 0..=1, with the candidates' means filled in where unknown.
#[derive(Clone, Debug, Default)]
pub(super) struct Statistics {
    pub conversion: Vec<f64>,
    pub response: Vec<f64>,
    pub feedback: Vec<f64>,
}

impl Statistics {
    /// One pass reads the candidates' statistics and sums what the means need; a second fills
    /// in conversion, which needs the mean, and the unknowns.
    pub fn of(input: &Pick<'_>) -> Statistics {
        let count = input.candidates.len();
        let mut conversion = Vec::with_capacity(count);
        let mut response = Vec::with_capacity(count);
        let mut feedback = Vec::with_capacity(count);
        let (mut won, mut closed) = (0.0, 0.0);
        let mut response_known = Known::default();
        let mut feedback_known = Known::default();
        for (position, _) in input.candidates {
            let stats = &input.rep_state(*position).stats;
            won += f64::from(stats.won);
            closed += f64::from(stats.closed);
            response.push(response_known.add(stats.response_secs.map(|secs| {
                RESPONSE_REFERENCE_SECS / (RESPONSE_REFERENCE_SECS + f64::from(secs))
            })));
            feedback.push(feedback_known.add(stats.feedback.map(|value| value.clamp(0.0, 1.0))));
        }
        let mean_rate = if closed > 0.0 { won / closed } else { 0.0 };
        for (position, _) in input.candidates {
            let stats = &input.rep_state(*position).stats;
            conversion.push(
                (f64::from(stats.won) + PRIOR_LEADS * mean_rate)
                    / (f64::from(stats.closed) + PRIOR_LEADS),
            );
        }
        response_known.fill(&mut response);
        feedback_known.fill(&mut feedback);
        Statistics {
            conversion,
            response,
            feedback,
        }
    }
}

/// The known values of one statistic, summed for their mean; an unknown is kept as NaN until
/// the mean replaces it (a NaN reading counts as unknown too).
#[derive(Default)]
struct Known {
    sum: f64,
    count: u32,
}

impl Known {
    fn add(&mut self, value: Option<f64>) -> f64 {
        match value {
            Some(value) if !value.is_nan() => {
                self.sum += value;
                self.count += 1;
                value
            }
            _ => f64::NAN,
        }
    }

    fn fill(&self, values: &mut [f64]) {
        let mean = if self.count == 0 {
            0.5
        } else {
            self.sum / f64::from(self.count)
        };
        for value in values.iter_mut().filter(|value| value.is_nan()) {
            *value = mean;
        }
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The weight each candidate has under the source: configured, or configured times a bounded
/// performance factor.
pub(crate) fn performance_weights(input: &Pick<'_>, source: &WeightSource) -> Vec<f64> {
    let configured = input.candidates.iter().map(|(_, weight)| *weight);
    let WeightSource::Performance(settings) = source else {
        return configured.collect();
    };
    let statistics = Statistics::of(input);
    let dimensions = [
        (settings.conversion, &statistics.conversion),
        (settings.response, &statistics.response),
        (settings.feedback, &statistics.feedback),
    ];
    let means: Vec<f64> = dimensions.iter().map(|(_, values)| mean(values)).collect();
    let total: f64 = dimensions.iter().map(|(weight, _)| weight).sum();
    configured
        .enumerate()
        .map(|(position, weight)| {
            if total <= 0.0 {
                return weight;
            }
            let factor = dimensions
                .iter()
                .zip(&means)
                .map(|((dimension_weight, values), mean)| {
                    let relative = if *mean > 0.0 {
                        values[position] / mean
                    } else {
                        1.0
                    };
                    dimension_weight * relative
                })
                .sum::<f64>()
                / total;
            weight * factor.clamp(settings.floor, settings.ceiling)
        })
        .collect()
}
