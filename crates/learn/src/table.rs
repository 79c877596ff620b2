//! Examples to learn from: one row per closed lead, its features' values interned per column,
//! the outcome and when it arrived.

use std::collections::HashMap;

use engine::model::Raw;

/// How a column is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Texts (and yes / no): one weight per frequent value.
    Category,
    /// Numbers: one weight per quantile bin.
    Number,
    /// Lists such as tags: one weight per frequent member.
    Set,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Category => "category",
            Kind::Number => "number",
            Kind::Set => "set",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    values: Vec<String>,
    index: HashMap<String, u32>,
}

impl Column {
    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.index.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_owned());
        self.index.insert(value.to_owned(), id);
        id
    }

    /// An interned value's text.
    pub fn value(&self, id: u32) -> &str {
        &self.values[id as usize]
    }

    pub fn distinct(&self) -> usize {
        self.values.len()
    }
}

/// One feature's value for one example.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Missing,
    Level(u32),
    Number(f64),
    Set(Vec<u32>),
}

#[derive(Clone, Debug)]
pub struct Example {
    pub cells: Vec<Cell>,
    pub won: bool,
    /// Arrival, for the time-ordered holdout (any increasing key).
    pub at: i64,
}

/// The examples, column by column.
#[derive(Clone, Debug)]
pub struct Table {
    pub columns: Vec<Column>,
    pub examples: Vec<Example>,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = (String, Kind)>) -> Table {
        Table {
            columns: columns
                .into_iter()
                .map(|(name, kind)| Column {
                    name,
                    kind,
                    values: Vec::new(),
                    index: HashMap::new(),
                })
                .collect(),
            examples: Vec::new(),
        }
    }

    /// Adds an example: one value per column, in the columns' order. A value of the wrong
    /// shape for its column (a text in a number column) counts as missing.
    pub fn push<'a>(&mut self, values: impl IntoIterator<Item = Raw<'a>>, won: bool, at: i64) {
        let mut cells = Vec::with_capacity(self.columns.len());
        for (column, value) in self.columns.iter_mut().zip(values) {
            cells.push(match (column.kind, value) {
                (Kind::Category, Raw::Text(text)) => Cell::Level(column.intern(text)),
                (Kind::Category, Raw::Number(number)) => {
                    Cell::Level(column.intern(&number.to_string()))
                }
                (Kind::Number, Raw::Number(number)) if number.is_finite() => Cell::Number(number),
                (Kind::Set, Raw::Set(members)) => {
                    let mut ids: Vec<u32> =
                        members.iter().map(|member| column.intern(member)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Cell::Set(ids)
                }
                (Kind::Set, Raw::Text(text)) => Cell::Set(vec![column.intern(text)]),
                _ => Cell::Missing,
            });
        }
        cells.resize(self.columns.len(), Cell::Missing);
        self.examples.push(Example { cells, won, at });
    }

    pub fn won(&self) -> usize {
        self.examples.iter().filter(|example| example.won).count()
    }
}
