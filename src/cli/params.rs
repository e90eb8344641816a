//! The generation parameters as command-line flags, built from the parameter table
//! (`wildcards_core::params::PARAMS`): one clap argument per table entry with its flag, help,
//! heading and value check. Flags are parsed into the same [`Params`] a manifest gives, and
//! checked by the same [`Params::problems`], so both reject the same values with the same
//! messages.

use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};
use wildcards_core::params::{Dataset, Kind, Needs, ParamDef, Params, PARAMS};

use super::UsageError;

/// Which table entries a subcommand offers.
pub trait Scope {
    /// `None`: the flags every dataset reads; `Some(d)`: the flags only `d` reads.
    const DATASET: Option<Dataset>;

    fn includes(def: &ParamDef) -> bool {
        def.flag.is_some()
            && match Self::DATASET {
                None => def.datasets.is_empty(),
                Some(d) => !def.datasets.is_empty() && def.applies_to(d),
            }
    }
}

/// The flags every dataset takes.
#[derive(Debug, Clone)]
pub struct Common;
impl Scope for Common {
    const DATASET: Option<Dataset> = None;
}

/// ImageNet's own flags.
#[derive(Debug, Clone)]
pub struct Imagenet;
impl Scope for Imagenet {
    const DATASET: Option<Dataset> = Some(Dataset::Imagenet);
}

/// Open Images' own flags.
#[derive(Debug, Clone)]
pub struct Openimages;
impl Scope for Openimages {
    const DATASET: Option<Dataset> = Some(Dataset::Openimages);
}

/// The parameters given as flags of scope `S`.
#[derive(Debug, Clone)]
pub struct ParamArgs<S> {
    pub params: Params,
    scope: PhantomData<S>,
}

impl<S: Scope> clap::Args for ParamArgs<S> {
    fn augment_args(cmd: Command) -> Command {
        cmd.args(PARAMS.iter().filter(|d| S::includes(d)).map(arg_for))
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<S: Scope> clap::FromArgMatches for ParamArgs<S> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut map = Map::new();
        for def in PARAMS.iter().filter(|d| S::includes(d)) {
            if let Some(v) = value_of(def, m) {
                map.insert(def.name.to_string(), v);
            }
        }
        let params = serde_json::from_value(Value::Object(map))
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e.to_string()))?;
        Ok(Self { params, scope: PhantomData })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The clap argument of one table entry.
fn arg_for(def: &'static ParamDef) -> Arg {
    let flag = def.flag.unwrap_or(def.name);
    let long_help: String =
        def.help.lines().map(str::trim).collect::<Vec<_>>().join(" ").trim().to_string();
    let arg = Arg::new(def.name)
        .long(flag)
        .help(def.short_help())
        .long_help(long_help)
        .help_heading(def.group.heading());
    let arg = if def.value_name.is_empty() { arg } else { arg.value_name(def.value_name) };
    match def.kind {
        Kind::Switch => arg.action(ArgAction::SetTrue),
        Kind::Bool => arg
            .num_args(0..=1)
            .default_missing_value("true")
            .value_parser(clap::builder::BoolishValueParser::new()),
        Kind::List => arg.num_args(1..).value_delimiter(',').action(ArgAction::Set),
        _ => arg.value_parser(move |s: &str| parse_value(def, s)),
    }
}

/// A flag's text as the JSON value a manifest would hold, checked like a manifest value.
fn parse_value(def: &'static ParamDef, s: &str) -> Result<Value, String> {
    let value = match def.kind {
        Kind::Count => {
            let n: u64 = s.trim().parse().map_err(|_| format!("'{s}' is not a whole number"))?;
            Value::from(n)
        }
        Kind::Unit => {
            let x: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
            Value::from(x)
        }
        Kind::Choice => {
            let lower = s.trim().to_ascii_lowercase();
            let lower = if lower == "yml" { "yaml".to_string() } else { lower };
            match def.values.iter().find(|v| **v == lower) {
                Some(v) => Value::from(*v),
                None => {
                    let values = def.values.join(", ");
                    return Err(format!("unknown {} '{s}': use {values}", def.name));
                }
            }
        }
        _ => Value::from(s),
    };
    let value = match (def.check, value.as_str()) {
        (wildcards_core::params::Check::Model, Some(m)) => {
            wildcards_core::params::normalize_model(m).map_or(value.clone(), Value::from)
        }
        _ => value,
    };
    def.check_value(&value).map_err(|(problem, fix)| format!("{problem}; {fix}"))?;
    Ok(value)
}

fn value_of(def: &ParamDef, m: &ArgMatches) -> Option<Value> {
    match def.kind {
        Kind::Switch => m.get_flag(def.name).then_some(Value::Bool(true)),
        Kind::Bool => m.get_one::<bool>(def.name).map(|b| Value::Bool(*b)),
        Kind::List => m
            .get_many::<String>(def.name)
            .map(|v| Value::Array(v.map(|s| Value::from(s.trim())).collect())),
        _ => m.get_one::<Value>(def.name).cloned(),
    }
}

/// Refuses flags that would do nothing (from the table's `needs`): smart thresholds without
/// `--smart`, `--depth` with it, a semantic setting without its switch.
/// `also_on`: switches that are not parameters but count (`analyze`).
pub fn check_usage(
    p: &Params,
    extra_smart_only: &[(&str, bool)],
    also_on: &[&str],
) -> Result<(), UsageError> {
    let set: Vec<&str> = p.set_values().into_iter().map(|(n, _)| n).collect();
    let is_on = |name: &str| {
        also_on.contains(&name)
            || p.set_values().iter().any(|(n, v)| *n == name && v == &Value::Bool(true))
    };
    let smart = p.smart == Some(true);
    for def in PARAMS.iter().filter(|d| set.contains(&d.name) && d.flag.is_some()) {
        let flag = def.flag_text();
        match def.needs {
            Needs::AnyOf(switches) if !switches.iter().any(|s| is_on(s)) => {
                let needed: Vec<String> = switches
                    .iter()
                    .map(|s| {
                        wildcards_core::params::param(s).map_or(format!("--{s}"), |d| d.flag_text())
                    })
                    .collect();
                let needed = needed.join(" or ");
                return Err(UsageError(format!(
                    "{flag} only applies with {needed}; add it (or drop {flag})"
                )));
            }
            Needs::Smart if !smart => return Err(not_smart(&flag)),
            Needs::NoSmart if smart => {
                return Err(UsageError(format!(
                    "{flag} only applies without --smart (smart mode decides depth by WordNet \
                     significance); drop one of them"
                )))
            }
            _ => {}
        }
    }
    if let Some((flag, _)) = extra_smart_only.iter().find(|(_, given)| *given && !smart) {
        return Err(not_smart(flag));
    }
    Ok(())
}

fn not_smart(flag: &str) -> UsageError {
    UsageError(format!("{flag} only applies in smart mode; add --smart (or drop {flag})"))
}

/// The table's value checks over parameters (a `--smart-config` file's included), as a usage
/// error naming the flag or key.
pub fn check_values(p: &Params) -> Result<(), UsageError> {
    match p.problems().into_iter().next() {
        Some((field, problem, fix)) => {
            let name = wildcards_core::params::param(&field).map_or(field, |d| d.flag_text());
            Err(UsageError(format!("{name}: {problem}; {fix}")))
        }
        None => Ok(()),
    }
}
