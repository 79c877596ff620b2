//! Conditions (条件): all / any / not trees of `field op value` rows over a lead, and rep
//! conditions (`rep.industries contains lead.industry`) for requirements and preferences.
//! Both compile once from `ConditionSpec`; evaluation never allocates.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};

use crate::compile::Errors;
use crate::field::{FieldCatalogue, LeadField, LeadView, RepField};
use crate::spec::ConditionSpec;
use crate::value::{FieldType, ValueRef, parse_time};

/// Nesting deeper than this is refused: forms never need it and it bounds evaluation.
const MAX_DEPTH: usize = 16;
/// Regex patterns are bounded in length and compiled size, so no rule can be made slow.
const MAX_PATTERN_LEN: usize = 512;
const MAX_REGEX_SIZE: usize = 1 << 16;

/// The operators a row can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    NotContains,
    ContainsAny,
    StartsWith,
    EndsWith,
    Matches,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    Exists,
    Missing,
}

const OPS: &[(&str, Op)] = &[
    ("equals", Op::Equals),
    ("not_equals", Op::NotEquals),
    ("in", Op::In),
    ("not_in", Op::NotIn),
    ("contains", Op::Contains),
    ("not_contains", Op::NotContains),
    ("contains_any", Op::ContainsAny),
    ("starts_with", Op::StartsWith),
    ("ends_with", Op::EndsWith),
    ("matches", Op::Matches),
    ("gt", Op::Gt),
    ("gte", Op::Gte),
    ("lt", Op::Lt),
    ("lte", Op::Lte),
    ("between", Op::Between),
    ("exists", Op::Exists),
    ("missing", Op::Missing),
];

impl Op {
    pub fn parse(text: &str) -> Option<Op> {
        OPS.iter()
            .find(|(name, _)| *name == text)
            .map(|(_, op)| *op)
    }

    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(name, _)| name)
    }

    fn names() -> String {
        OPS.iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn negated(self) -> bool {
        matches!(
            self,
            Op::NotEquals | Op::NotIn | Op::NotContains | Op::Missing
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Comparison {
    fn from_op(op: Op) -> Option<Comparison> {
        Some(match op {
            Op::Gt => Comparison::Gt,
            Op::Gte => Comparison::Gte,
            Op::Lt => Comparison::Lt,
            Op::Lte => Comparison::Lte,
            _ => return None,
        })
    }

    fn holds(self, ordering: Option<Ordering>) -> bool {
        match (self, ordering) {
            (_, None) => false,
            (Comparison::Gt, Some(ordering)) => ordering == Ordering::Greater,
            (Comparison::Gte, Some(ordering)) => ordering != Ordering::Less,
            (Comparison::Lt, Some(ordering)) => ordering == Ordering::Less,
            (Comparison::Lte, Some(ordering)) => ordering != Ordering::Greater,
        }
    }
}

/// What a leaf tests, after the field's type chose the meaning of the operator. Negated
/// operators (`not_equals`, `missing`…) are the positive test with `negate` set, so a missing
/// value fails every positive test and passes every negated one.
#[derive(Clone, Debug)]
enum Test {
    Present,
    TextEquals(String),
    TextIn(Vec<String>),
    TextContains(String),
    TextContainsAny(Vec<String>),
    StartsWith(String),
    EndsWith(String),
    Matches(Regex),
    ListContains(String),
    ListContainsAny(Vec<String>),
    NumberEquals(f64),
    NumberIn(Vec<f64>),
    NumberCompare(Comparison, f64),
    NumberBetween(f64, f64),
    TimeEquals(DateTime<Utc>),
    TimeCompare(Comparison, DateTime<Utc>),
    TimeBetween(DateTime<Utc>, DateTime<Utc>),
    BoolEquals(bool),
}

impl Test {
    fn holds(&self, value: Option<ValueRef<'_>>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match (self, value) {
            (Test::Present, ValueRef::Text(text)) => !text.is_empty(),
            (Test::Present, ValueRef::List(items)) => !items.is_empty(),
            (Test::Present, _) => true,
            (Test::TextEquals(expected), ValueRef::Text(text)) => text == expected,
            (Test::TextIn(set), ValueRef::Text(text)) => set.iter().any(|item| item == text),
            (Test::TextContains(part), ValueRef::Text(text)) => text.contains(part.as_str()),
            (Test::TextContainsAny(parts), ValueRef::Text(text)) => {
                parts.iter().any(|part| text.contains(part.as_str()))
            }
            (Test::StartsWith(prefix), ValueRef::Text(text)) => text.starts_with(prefix.as_str()),
            (Test::EndsWith(suffix), ValueRef::Text(text)) => text.ends_with(suffix.as_str()),
            (Test::Matches(regex), ValueRef::Text(text)) => regex.is_match(text),
            (Test::ListContains(item), ValueRef::List(items)) => items.contains(item),
            (Test::ListContainsAny(wanted), ValueRef::List(items)) => {
                items.iter().any(|item| wanted.contains(item))
            }
            (Test::NumberEquals(expected), ValueRef::Number(number)) => number == *expected,
            (Test::NumberIn(set), ValueRef::Number(number)) => set.contains(&number),
            (Test::NumberCompare(comparison, bound), ValueRef::Number(number)) => {
                comparison.holds(number.partial_cmp(bound))
            }
            (Test::NumberBetween(low, high), ValueRef::Number(number)) => {
                (*low..=*high).contains(&number)
            }
            (Test::TimeEquals(expected), ValueRef::Time(time)) => time == *expected,
            (Test::TimeCompare(comparison, bound), ValueRef::Time(time)) => {
                comparison.holds(Some(time.cmp(bound)))
            }
            (Test::TimeBetween(low, high), ValueRef::Time(time)) => (*low..=*high).contains(&time),
            (Test::BoolEquals(expected), ValueRef::Bool(flag)) => flag == *expected,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Leaf {
    field: LeadField,
    test: Test,
    negate: bool,
}

#[derive(Clone, Debug)]
enum Node {
    All(Vec<Node>),
    Any(u16, Vec<Node>),
    Not(u16, Box<Node>),
    Leaf(u16, Leaf),
}

/// A node of a condition as explanations show it.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeInfo {
    All,
    Any,
    Not,
    Row {
        field: LeadField,
        op: Op,
        /// The value as written, in JSON.
        value: String,
    },
}

/// A compiled lead condition.
#[derive(Clone, Debug)]
pub struct Condition {
    root: Node,
    nodes: Vec<(String, NodeInfo)>,
}

/// The id of a node, in pre-order; `Condition::node` describes it.
pub type NodeId = u16;

impl Condition {
    /// `Ok` when the lead matches, otherwise the first node that failed: a row, or an
    /// `any` / `not` group whose children decided it.
    pub fn eval(&self, lead: &LeadView<'_>) -> Result<(), NodeId> {
        eval_node(&self.root, lead)
    }

    pub fn matches(&self, lead: &LeadView<'_>) -> bool {
        self.eval(lead).is_ok()
    }

    /// The row that decides first whether this condition can hold, when it asks for one of a
    /// few texts: the condition itself, or the first row of its `all`, being `field equals x`
    /// or `field in [x, y]`. A lead whose field holds none of them fails at that row, which is
    /// the node `eval` would name, so a rule index can skip the evaluation.
    pub(crate) fn gate(&self) -> Option<(LeadField, NodeId, &[String])> {
        let leaf = match &self.root {
            Node::Leaf(..) => &self.root,
            Node::All(children) => children.first()?,
            _ => return None,
        };
        match leaf {
            Node::Leaf(id, leaf) if !leaf.negate => match &leaf.test {
                Test::TextEquals(value) => Some((leaf.field, *id, std::slice::from_ref(value))),
                Test::TextIn(values) => Some((leaf.field, *id, values.as_slice())),
                _ => None,
            },
            _ => None,
        }
    }

    /// The path (`all[1].any[0]`) and description of a node.
    pub fn node(&self, id: NodeId) -> Option<(&str, &NodeInfo)> {
        self.nodes
            .get(usize::from(id))
            .map(|(path, info)| (path.as_str(), info))
    }

    pub(crate) fn compile(
        spec: &ConditionSpec,
        catalogue: &FieldCatalogue,
        path: &str,
        errors: &mut Errors,
    ) -> Option<Condition> {
        let mut nodes = Vec::new();
        let root = compile_node(spec, catalogue, path, "", 0, &mut nodes, errors)?;
        Some(Condition { root, nodes })
    }
}

fn eval_node(node: &Node, lead: &LeadView<'_>) -> Result<(), NodeId> {
    match node {
        Node::All(children) => children.iter().try_for_each(|child| eval_node(child, lead)),
        Node::Any(id, children) => {
            if children.iter().any(|child| eval_node(child, lead).is_ok()) {
                Ok(())
            } else {
                Err(*id)
            }
        }
        Node::Not(id, child) => match eval_node(child, lead) {
            Ok(()) => Err(*id),
            Err(_) => Ok(()),
        },
        Node::Leaf(id, leaf) => {
            if leaf.test.holds(lead.get(leaf.field)) != leaf.negate {
                Ok(())
            } else {
                Err(*id)
            }
        }
    }
}

fn compile_node(
    spec: &ConditionSpec,
    catalogue: &FieldCatalogue,
    path: &str,
    relative: &str,
    depth: usize,
    nodes: &mut Vec<(String, NodeInfo)>,
    errors: &mut Errors,
) -> Option<Node> {
    if depth > MAX_DEPTH {
        errors.push(
            path,
            "too_deep",
            format!("conditions nest at most {MAX_DEPTH} levels"),
        );
        return None;
    }
    let shapes = [
        spec.all.is_some(),
        spec.any.is_some(),
        spec.not.is_some(),
        spec.field.is_some() || spec.op.is_some(),
    ];
    if shapes.iter().filter(|shape| **shape).count() != 1 {
        errors.push(
            path,
            "invalid_condition",
            "a condition has exactly one of all, any, not, or field with op".to_owned(),
        );
        return None;
    }
    if nodes.len() >= usize::from(u16::MAX) {
        errors.push(
            path,
            "too_large",
            "a condition has too many rows".to_owned(),
        );
        return None;
    }
    let id = nodes.len() as u16;
    let child_path = |name: &str| {
        let relative = if relative.is_empty() {
            name.to_owned()
        } else {
            format!("{relative}.{name}")
        };
        (format!("{path}.{name}"), relative)
    };
    if let Some(children) = spec.all.as_ref().or(spec.any.as_ref()) {
        let is_all = spec.all.is_some();
        nodes.push((
            relative.to_owned(),
            if is_all { NodeInfo::All } else { NodeInfo::Any },
        ));
        let key = if is_all { "all" } else { "any" };
        if children.is_empty() {
            errors.push(
                path,
                "invalid_condition",
                format!("{key} needs at least one condition"),
            );
        }
        let mut compiled = Vec::with_capacity(children.len());
        for (index, child) in children.iter().enumerate() {
            let (child_path, child_relative) = child_path(&format!("{key}[{index}]"));
            if let Some(node) = compile_node(
                child,
                catalogue,
                &child_path,
                &child_relative,
                depth + 1,
                nodes,
                errors,
            ) {
                compiled.push(node);
            }
        }
        return Some(if is_all {
            Node::All(compiled)
        } else {
            Node::Any(id, compiled)
        });
    }
    if let Some(child) = &spec.not {
        nodes.push((relative.to_owned(), NodeInfo::Not));
        let (child_path, child_relative) = child_path("not");
        let child = compile_node(
            child,
            catalogue,
            &child_path,
            &child_relative,
            depth + 1,
            nodes,
            errors,
        )?;
        return Some(Node::Not(id, Box::new(child)));
    }
    if spec.reference.is_some() {
        errors.push(
            &format!("{path}.ref"),
            "ref_not_allowed",
            "ref compares with a lead field and is only allowed in requires and prefers".to_owned(),
        );
        return None;
    }
    let (field, field_type) = lead_field(spec, catalogue, path, errors)?;
    let op = parse_op(spec, path, errors)?;
    let test = compile_test(field_type, op, spec.value.as_ref(), path, errors)?;
    nodes.push((
        relative.to_owned(),
        NodeInfo::Row {
            field,
            op,
            value: spec
                .value
                .as_ref()
                .map_or_else(String::new, |value| value.to_string()),
        },
    ));
    Some(Node::Leaf(
        id,
        Leaf {
            field,
            test,
            negate: op.negated(),
        },
    ))
}

fn lead_field(
    spec: &ConditionSpec,
    catalogue: &FieldCatalogue,
    path: &str,
    errors: &mut Errors,
) -> Option<(LeadField, FieldType)> {
    let Some(name) = spec.field.as_deref() else {
        errors.push(
            &format!("{path}.field"),
            "missing_field",
            "a row needs a field".to_owned(),
        );
        return None;
    };
    if name.starts_with("rep.") {
        errors.push(
            &format!("{path}.field"),
            "rep_field_not_allowed",
            format!("{name:?} is a rep field; rep fields belong in requires and prefers"),
        );
        return None;
    }
    let resolved = catalogue.lead_field(name);
    if resolved.is_none() {
        errors.push(
            &format!("{path}.field"),
            "unknown_field",
            format!("unknown lead field {name:?}"),
        );
    }
    resolved
}

fn parse_op(spec: &ConditionSpec, path: &str, errors: &mut Errors) -> Option<Op> {
    let op_path = format!("{path}.op");
    let Some(text) = spec.op.as_deref() else {
        errors.push(&op_path, "missing_field", "a row needs an op".to_owned());
        return None;
    };
    let op = Op::parse(text);
    if op.is_none() {
        errors.push(
            &op_path,
            "unknown_operator",
            format!("unknown operator {text:?}, expected one of {}", Op::names()),
        );
    }
    op
}

fn compile_test(
    field_type: FieldType,
    op: Op,
    value: Option<&serde_json::Value>,
    path: &str,
    errors: &mut Errors,
) -> Option<Test> {
    let value_path = format!("{path}.value");
    if matches!(op, Op::Exists | Op::Missing) {
        if value.is_some() {
            errors.push(
                &value_path,
                "invalid_value",
                format!("{} takes no value", op.as_str()),
            );
            return None;
        }
        return Some(Test::Present);
    }
    let Some(value) = value else {
        errors.push(
            &value_path,
            "missing_field",
            format!("{} needs a value", op.as_str()),
        );
        return None;
    };
    let invalid = |errors: &mut Errors, expected: &str| {
        errors.push(
            &value_path,
            "invalid_value",
            format!(
                "{} on a {} field needs {expected}",
                op.as_str(),
                field_type.name()
            ),
        );
        None
    };
    // Each arm reads the value as its test needs it; a value of another type (the text "一千"
    // for a number) is refused with what was expected, never dropped with its condition.
    let (test, expected) = match (field_type, op) {
        (FieldType::Text, Op::Equals | Op::NotEquals) => {
            (text(value).map(Test::TextEquals), "a text")
        }
        (FieldType::Text, Op::In | Op::NotIn) => {
            (texts(value).map(Test::TextIn), "a list of texts")
        }
        (FieldType::Text, Op::Contains | Op::NotContains) => {
            (text(value).map(Test::TextContains), "a text")
        }
        (FieldType::Text, Op::ContainsAny) => {
            (texts(value).map(Test::TextContainsAny), "a list of texts")
        }
        (FieldType::Text, Op::StartsWith) => (text(value).map(Test::StartsWith), "a text"),
        (FieldType::Text, Op::EndsWith) => (text(value).map(Test::EndsWith), "a text"),
        (FieldType::Text, Op::Matches) => {
            let Some(pattern) = text(value) else {
                return invalid(errors, "a text");
            };
            return compile_regex(&pattern, &value_path, errors).map(Test::Matches);
        }
        (FieldType::List, Op::Contains | Op::NotContains) => {
            (text(value).map(Test::ListContains), "a text")
        }
        (FieldType::List, Op::ContainsAny) => {
            (texts(value).map(Test::ListContainsAny), "a list of texts")
        }
        (FieldType::Number, Op::Equals | Op::NotEquals) => {
            (number(value).map(Test::NumberEquals), "a number")
        }
        (FieldType::Number, Op::In | Op::NotIn) => {
            (numbers(value).map(Test::NumberIn), "a list of numbers")
        }
        (FieldType::Number, Op::Gt | Op::Gte | Op::Lt | Op::Lte) => (
            number(value)
                .and_then(|bound| Some(Test::NumberCompare(Comparison::from_op(op)?, bound))),
            "a number",
        ),
        (FieldType::Number, Op::Between) => match pair(value, number) {
            Some((low, high)) if low > high => {
                return invalid(errors, "[low, high] with low ≤ high");
            }
            pair => (
                pair.map(|(low, high)| Test::NumberBetween(low, high)),
                "[low, high], two numbers",
            ),
        },
        (FieldType::Time, Op::Equals | Op::NotEquals) => {
            (time(value).map(Test::TimeEquals), "an RFC 3339 time")
        }
        (FieldType::Time, Op::Gt | Op::Gte | Op::Lt | Op::Lte) => (
            time(value).and_then(|bound| Some(Test::TimeCompare(Comparison::from_op(op)?, bound))),
            "an RFC 3339 time",
        ),
        (FieldType::Time, Op::Between) => match pair(value, time) {
            Some((low, high)) if low > high => {
                return invalid(errors, "[from, to] with from ≤ to");
            }
            pair => (
                pair.map(|(low, high)| Test::TimeBetween(low, high)),
                "[from, to], two RFC 3339 times",
            ),
        },
        (FieldType::Bool, Op::Equals | Op::NotEquals) => {
            (value.as_bool().map(Test::BoolEquals), "true or false")
        }
        _ => {
            errors.push(
                &format!("{path}.op"),
                "operator_not_for_type",
                format!(
                    "{} does not apply to a {} field",
                    op.as_str(),
                    field_type.name()
                ),
            );
            return None;
        }
    };
    test.or_else(|| invalid(errors, expected))
}

fn compile_regex(pattern: &str, path: &str, errors: &mut Errors) -> Option<Regex> {
    if pattern.len() > MAX_PATTERN_LEN {
        errors.push(
            path,
            "invalid_regex",
            format!("patterns are at most {MAX_PATTERN_LEN} bytes"),
        );
        return None;
    }
    match RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
    {
        Ok(regex) => Some(regex),
        Err(error) => {
            errors.push(path, "invalid_regex", error.to_string());
            None
        }
    }
}

fn text(value: &serde_json::Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn texts(value: &serde_json::Value) -> Option<Vec<String>> {
    let items = value.as_array()?;
    if items.is_empty() {
        return None;
    }
    items.iter().map(text).collect()
}

fn number(value: &serde_json::Value) -> Option<f64> {
    value.as_f64().filter(|number| number.is_finite())
}

fn numbers(value: &serde_json::Value) -> Option<Vec<f64>> {
    value.as_array()?.iter().map(number).collect()
}

fn time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    parse_time(value.as_str()?).ok()
}

fn pair<T>(value: &serde_json::Value, read: fn(&serde_json::Value) -> Option<T>) -> Option<(T, T)> {
    match value.as_array()?.as_slice() {
        [low, high] => Some((read(low)?, read(high)?)),
        _ => None,
    }
}

/// A requirement or preference on reps: one `rep.field op value-or-ref` row.
#[derive(Clone, Debug)]
pub struct RepCondition {
    pub field: RepField,
    pub field_type: FieldType,
    pub op: Op,
    pub operand: Operand,
}

/// The right-hand side of a rep condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Nothing,
    Text(String),
    Texts(Vec<String>),
    Number(f64),
    /// The value of a lead field, read when the lead is routed.
    Lead(LeadField),
}

impl RepCondition {
    pub(crate) fn compile(
        spec: &ConditionSpec,
        catalogue: &FieldCatalogue,
        path: &str,
        errors: &mut Errors,
    ) -> Option<RepCondition> {
        if spec.all.is_some() || spec.any.is_some() || spec.not.is_some() {
            errors.push(
                path,
                "invalid_condition",
                "requirements and preferences are single rows, each one must hold".to_owned(),
            );
            return None;
        }
        let Some(name) = spec.field.as_deref() else {
            errors.push(
                &format!("{path}.field"),
                "missing_field",
                "a row needs a field".to_owned(),
            );
            return None;
        };
        let Some((field, field_type)) = catalogue.rep_field(name) else {
            errors.push(
                &format!("{path}.field"),
                "unknown_field",
                format!("unknown rep field {name:?}; rep conditions read rep.regions, rep.industries, rep.products, rep.languages, rep.teams, rep.level, rep.weight, rep.id or rep.attributes.*"),
            );
            return None;
        };
        let op = parse_op(spec, path, errors)?;
        let wanted = rep_operand_type(field_type, op);
        let Some(wanted) = wanted else {
            errors.push(
                &format!("{path}.op"),
                "operator_not_for_type",
                format!("{} does not apply to {name}", op.as_str()),
            );
            return None;
        };
        let operand = match (&spec.value, &spec.reference, wanted) {
            (None, None, OperandType::Nothing) => Operand::Nothing,
            (Some(_), Some(_), _) => {
                errors.push(
                    path,
                    "invalid_condition",
                    "give a value or a ref, not both".to_owned(),
                );
                return None;
            }
            (None, Some(reference), wanted) if wanted != OperandType::Nothing => {
                let Some((lead_field, lead_type)) = catalogue.lead_field(reference) else {
                    errors.push(
                        &format!("{path}.ref"),
                        "unknown_field",
                        format!("unknown lead field {reference:?}"),
                    );
                    return None;
                };
                let fits = match wanted {
                    OperandType::Text => lead_type == FieldType::Text,
                    OperandType::Texts => matches!(lead_type, FieldType::Text | FieldType::List),
                    OperandType::Number => lead_type == FieldType::Number,
                    OperandType::Nothing => false,
                };
                if !fits {
                    errors.push(
                        &format!("{path}.ref"),
                        "invalid_value",
                        format!(
                            "{} {} cannot compare with the {} field {reference}",
                            name,
                            op.as_str(),
                            lead_type.name()
                        ),
                    );
                    return None;
                }
                Operand::Lead(lead_field)
            }
            (Some(value), None, OperandType::Text) if value.is_string() => {
                Operand::Text(text(value).unwrap_or_default())
            }
            (Some(value), None, OperandType::Texts) if texts(value).is_some() => {
                Operand::Texts(texts(value).unwrap_or_default())
            }
            (Some(value), None, OperandType::Number) if number(value).is_some() => {
                Operand::Number(number(value).unwrap_or_default())
            }
            (_, _, wanted) => {
                let expected = match wanted {
                    OperandType::Nothing => "no value",
                    OperandType::Text => "a text value or a ref to a text lead field",
                    OperandType::Texts => "a list of texts or a ref to a lead field",
                    OperandType::Number => "a number or a ref to a number lead field",
                };
                errors.push(
                    &format!("{path}.value"),
                    "invalid_value",
                    format!("{name} {} needs {expected}", op.as_str()),
                );
                return None;
            }
        };
        Some(RepCondition {
            field,
            field_type,
            op,
            operand,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OperandType {
    Nothing,
    Text,
    Texts,
    Number,
}

fn rep_operand_type(field_type: FieldType, op: Op) -> Option<OperandType> {
    Some(match (field_type, op) {
        (_, Op::Exists | Op::Missing) => OperandType::Nothing,
        (FieldType::List, Op::Contains | Op::NotContains) => OperandType::Text,
        (FieldType::List, Op::ContainsAny) => OperandType::Texts,
        (FieldType::Text, Op::Equals | Op::NotEquals) => OperandType::Text,
        (FieldType::Text, Op::In | Op::NotIn) => OperandType::Texts,
        (FieldType::Number, Op::Equals | Op::NotEquals | Op::Gt | Op::Gte | Op::Lt | Op::Lte) => {
            OperandType::Number
        }
        _ => return None,
    })
}
