//! Every example in docs/rules.md compiles against the org the page describes.

use engine::field::CustomField;
use engine::value::FieldType;
use engine::{FieldCatalogue, Known, Roster, RuleSetSpec, compile};

use crate::support::{POOLS, org, team};

const RULES_MD: &str = include_str!("../../../../docs/rules.md");

/// The fenced blocks of a language in a Markdown text.
fn blocks(language: &str) -> Vec<String> {
    let fence = format!("```{language}");
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in RULES_MD.lines() {
        match &mut current {
            None if line.trim() == fence => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                found.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    found
}

fn check(spec: Result<RuleSetSpec, String>, block: &str) {
    let (reps, mut teams) = org();
    teams.push(team("key_accounts", &["r01", "r04"]));
    let roster = Roster::new(reps, teams).expect("roster");
    let catalogue = FieldCatalogue::new(
        vec![CustomField {
            name: "account_owner".into(),
            field_type: FieldType::Text,
        }],
        Vec::new(),
    )
    .expect("catalogue");
    let pools: Vec<String> = POOLS.iter().map(|pool| (*pool).to_owned()).collect();
    let spec = spec.unwrap_or_else(|error| panic!("{error}\n{block}"));
    if let Err(errors) = compile(
        &spec,
        Known {
            catalogue: &catalogue,
            roster: &roster,
            pools: &pools,
            sla_policies: &[],
        },
        1,
    ) {
        panic!("{errors:?}\n{block}");
    }
}

#[test]
fn docs_examples_compile() {
    let json = blocks("json");
    let toml = blocks("toml");
    assert_eq!((json.len(), toml.len()), (6, 1));
    for block in &json {
        check(RuleSetSpec::from_json(block), block);
    }
    for block in &toml {
        check(RuleSetSpec::from_toml(block), block);
    }
}
