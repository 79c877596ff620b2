//! Performance statistics as comparable numbers, and weights derived from them: conversion
//! smoothed toward the candidates' mean, response speed, and feedback.

use super::{Pick, WeightSource};
use crate::rep::RepStats;

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
    pub fn of(input: &Pick<'_>) -> Statistics {
        let stats: Vec<&RepStats> = input
            .candidates
            .iter()
            .map(|(position, _)| &input.rep_state(*position).stats)
            .collect();
        let (won, closed) = stats.iter().fold((0.0, 0.0), |(won, closed), stats| {
            (won + f64::from(stats.won), closed + f64::from(stats.closed))
        });
        let mean_rate = if closed > 0.0 { won / closed } else { 0.0 };
        let conversion = stats
            .iter()
            .map(|stats| {
                (f64::from(stats.won) + PRIOR_LEADS * mean_rate)
                    / (f64::from(stats.closed) + PRIOR_LEADS)
            })
            .collect();
        let response = fill_with_mean(stats.iter().map(|stats| {
            stats
                .response_secs
                .map(|secs| RESPONSE_REFERENCE_SECS / (RESPONSE_REFERENCE_SECS + f64::from(secs)))
        }));
        let feedback = fill_with_mean(
            stats
                .iter()
                .map(|stats| stats.feedback.map(|value| value.clamp(0.0, 1.0))),
        );
        Statistics {
            conversion,
            response,
            feedback,
        }
    }
}

fn fill_with_mean(values: impl Iterator<Item = Option<f64>>) -> Vec<f64> {
    let values: Vec<Option<f64>> = values.collect();
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let mean = if known.is_empty() {
        0.5
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    values
        .into_iter()
        .map(|value| value.unwrap_or(mean))
        .collect()
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
