//! Turning columns into indicator features, fitted on training rows only: frequent values of a
//! text each get one, rare ones share "other"; numbers are cut at quantiles; missing is a
//! value of its own. Every feature is 0 or 1, so a row is the list of its active indicators.

use engine::model::{Encoding, FeatureSpec, Level, ModelSpec};

use crate::table::{Cell, Kind, Table};

/// Bins a number is cut into at most.
const MAX_BINS: usize = 10;
/// Levels one text or list keeps at most; the rest are "other".
const MAX_LEVELS: usize = 60;

/// What one column became.
#[derive(Clone, Debug)]
pub(crate) enum Code {
    Category {
        /// The indicator of each interned value, if it was frequent enough.
        of: Vec<Option<u32>>,
        other: Option<u32>,
        missing: Option<u32>,
    },
    Number {
        edges: Vec<f64>,
        first: u32,
        missing: Option<u32>,
    },
    Set {
        of: Vec<Option<u32>>,
    },
}

/// The indicators of every column, fitted on some rows.
#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    pub codes: Vec<Code>,
    pub width: usize,
}

/// Rows as lists of active indicators (sorted), with their outcomes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Design {
    pub offsets: Vec<usize>,
    pub indices: Vec<u32>,
    pub labels: Vec<bool>,
}

impl Design {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn row(&self, row: usize) -> &[u32] {
        &self.indices[self.offsets[row]..self.offsets[row + 1]]
    }
}

/// The least count a value needs to get its own weight.
pub(crate) fn min_count(rows: usize) -> usize {
    (rows / 500).max(5)
}

impl Encoder {
    pub fn fit(table: &Table, rows: &[usize]) -> Encoder {
        let least = min_count(rows.len());
        let mut width = 0u32;
        let mut next = |count: u32| {
            width += count;
            width - count
        };
        let mut codes = Vec::with_capacity(table.columns.len());
        for (at, column) in table.columns.iter().enumerate() {
            let cells = rows.iter().map(|&row| &table.examples[row].cells[at]);
            match column.kind {
                Kind::Category | Kind::Set => {
                    let mut counts = vec![0usize; column.distinct()];
                    let mut missing = 0usize;
                    for cell in cells {
                        match cell {
                            Cell::Level(id) => counts[*id as usize] += 1,
                            Cell::Set(ids) => ids.iter().for_each(|id| counts[*id as usize] += 1),
                            _ => missing += 1,
                        }
                    }
                    let mut frequent: Vec<u32> = (0..counts.len() as u32)
                        .filter(|id| counts[*id as usize] >= least)
                        .collect();
                    // Most frequent first, ties by value so a fit is the same every time.
                    frequent.sort_by(|a, b| {
                        counts[*b as usize]
                            .cmp(&counts[*a as usize])
                            .then_with(|| column.value(*a).cmp(column.value(*b)))
                    });
                    frequent.truncate(MAX_LEVELS);
                    let mut of = vec![None; counts.len()];
                    for id in &frequent {
                        of[*id as usize] = Some(next(1));
                    }
                    let pooled = counts
                        .iter()
                        .enumerate()
                        .any(|(id, count)| *count > 0 && of[id].is_none());
                    if column.kind == Kind::Set {
                        codes.push(Code::Set { of });
                    } else {
                        codes.push(Code::Category {
                            of,
                            other: pooled.then(|| next(1)),
                            missing: (missing > 0).then(|| next(1)),
                        });
                    }
                }
                Kind::Number => {
                    let mut values: Vec<f64> = Vec::new();
                    let mut missing = 0usize;
                    for cell in cells {
                        match cell {
                            Cell::Number(number) => values.push(*number),
                            _ => missing += 1,
                        }
                    }
                    let edges = quantile_edges(&mut values);
                    let first = next(edges.len() as u32 + 1);
                    codes.push(Code::Number {
                        edges,
                        first,
                        missing: (missing > 0).then(|| next(1)),
                    });
                }
            }
        }
        let width = next(0) as usize;
        Encoder { codes, width }
    }

    /// The active indicators of one example, appended to `out` (sorted).
    pub fn encode(&self, cells: &[Cell], out: &mut Vec<u32>) {
        let start = out.len();
        for (code, cell) in self.codes.iter().zip(cells) {
            match (code, cell) {
                (Code::Category { of, other, .. }, Cell::Level(id)) => {
                    if let Some(index) = of.get(*id as usize).copied().flatten().or(*other) {
                        out.push(index);
                    }
                }
                (Code::Category { missing, .. }, _) => out.extend(*missing),
                (Code::Number { edges, first, .. }, Cell::Number(number)) => {
                    out.push(first + edges.partition_point(|edge| edge <= number) as u32);
                }
                (Code::Number { missing, .. }, _) => out.extend(*missing),
                (Code::Set { of }, Cell::Set(ids)) => {
                    out.extend(
                        ids.iter()
                            .filter_map(|id| of.get(*id as usize).copied().flatten()),
                    );
                }
                (Code::Set { .. }, _) => {}
            }
        }
        out[start..].sort_unstable();
    }

    pub fn design(&self, table: &Table, rows: &[usize]) -> Design {
        let mut design = Design {
            offsets: Vec::with_capacity(rows.len() + 1),
            indices: Vec::new(),
            labels: Vec::with_capacity(rows.len()),
        };
        design.offsets.push(0);
        for &row in rows {
            let example = &table.examples[row];
            self.encode(&example.cells, &mut design.indices);
            design.offsets.push(design.indices.len());
            design.labels.push(example.won);
        }
        design
    }

    /// The stored model: each column's levels with their weights.
    pub fn to_spec(
        &self,
        table: &Table,
        intercept: f64,
        weights: &[f64],
        time_zone: &str,
    ) -> ModelSpec {
        let weight = |index: Option<u32>| index.map_or(0.0, |index| weights[index as usize]);
        let levels = |of: &[Option<u32>], column: usize| -> Vec<Level> {
            let mut levels: Vec<(u32, Level)> = of
                .iter()
                .enumerate()
                .filter_map(|(id, index)| {
                    index.map(|index| {
                        (
                            index,
                            Level {
                                value: table.columns[column].value(id as u32).to_owned(),
                                weight: weights[index as usize],
                            },
                        )
                    })
                })
                .collect();
            levels.sort_by_key(|(index, _)| *index);
            levels.into_iter().map(|(_, level)| level).collect()
        };
        let features = self
            .codes
            .iter()
            .enumerate()
            .map(|(column, code)| FeatureSpec {
                field: table.columns[column].name.clone(),
                encoding: match code {
                    Code::Category { of, other, missing } => Encoding::Category {
                        levels: levels(of, column),
                        other: weight(*other),
                        missing: weight(*missing),
                    },
                    Code::Number {
                        edges,
                        first,
                        missing,
                    } => Encoding::Number {
                        edges: edges.clone(),
                        weights: (0..=edges.len())
                            .map(|bin| weights[*first as usize + bin])
                            .collect(),
                        missing: weight(*missing),
                    },
                    Code::Set { of } => Encoding::Set {
                        levels: levels(of, column),
                    },
                },
            })
            .collect();
        ModelSpec {
            intercept,
            time_zone: time_zone.to_owned(),
            features,
        }
    }
}

/// Cuts at the deciles (each distinct value its own bin when there are few), so that every
/// bin holds values and a value equal to an edge falls in the bin above it.
fn quantile_edges(values: &mut [f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut distinct: Vec<f64> = values.to_vec();
    distinct.dedup();
    if distinct.len() <= MAX_BINS {
        return distinct.into_iter().skip(1).collect();
    }
    let mut edges: Vec<f64> = (1..MAX_BINS)
        .map(|decile| values[decile * values.len() / MAX_BINS])
        .filter(|edge| *edge > values[0])
        .collect();
    edges.dedup();
    edges
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::model::Raw;

    #[test]
    fn rare_values_are_pooled_and_missing_is_a_value() {
        let mut table = Table::new([
            ("source".to_owned(), Kind::Category),
            ("size".to_owned(), Kind::Number),
        ]);
        for index in 0..100 {
            let source = if index % 2 == 0 { "展会" } else { "官网" };
            table.push(
                [Raw::Text(source), Raw::Number(f64::from(index))],
                index % 3 == 0,
                index.into(),
            );
        }
        table.push([Raw::Text("rare"), Raw::Missing], true, 100);
        let rows: Vec<usize> = (0..table.examples.len()).collect();
        let encoder = Encoder::fit(&table, &rows);
        // 展会, 官网, other; ten bins and missing.
        assert_eq!(encoder.width, 3 + 10 + 1);
        let mut out = Vec::new();
        encoder.encode(&table.examples[100].cells, &mut out);
        assert_eq!(out, vec![2, 13]);
        out.clear();
        encoder.encode(&table.examples[0].cells, &mut out);
        // 官网 sorts before 展会 (equal counts, ties by value).
        assert_eq!(out, vec![1, 3]);
    }

    #[test]
    fn a_value_on_an_edge_falls_in_the_bin_above() {
        let mut values: Vec<f64> = vec![1.0, 2.0, 2.0, 3.0];
        let edges = quantile_edges(&mut values);
        assert_eq!(edges, vec![2.0, 3.0]);
        assert_eq!(edges.partition_point(|edge| *edge <= 2.0), 1);
        assert_eq!(edges.partition_point(|edge| *edge <= 1.0), 0);
    }
}
