//! The Slurm options of a batch run with `--executor slurm`: the manifest's `config.slurm`
//! section and the matching flags (a flag wins). Checked before anything is submitted, so a
//! typo in a time limit is an error naming the field or flag, not a rejected `sbatch`.

use serde::{Deserialize, Deserializer, Serialize};

/// `config.slurm: {partition, time, account, qos, cpus_per_task, mem, extra_args}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// `sbatch --partition`.
    pub partition: Option<String>,
    /// Time limit of each array task (`sbatch --time`): minutes, `MM:SS`, `HH:MM:SS`,
    /// `D-HH[:MM[:SS]]` or `UNLIMITED`.
    #[serde(default, deserialize_with = "scalar_text")]
    pub time: Option<String>,
    /// `sbatch --account`.
    pub account: Option<String>,
    /// `sbatch --qos`.
    pub qos: Option<String>,
    /// CPUs of each array task; the task runs this many worker processes.
    pub cpus_per_task: Option<u16>,
    /// Memory of each array task (`sbatch --mem`): a number with an optional K, M, G or T.
    #[serde(default, deserialize_with = "scalar_text")]
    pub mem: Option<String>,
    /// More `sbatch` arguments, each one word: `["--constraint=avx2", "--nice=10"]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl SlurmOptions {
    /// These options with every value `over` sets put over them (flags over the manifest);
    /// extra arguments add up (the manifest's first).
    pub fn overlaid(&self, over: &SlurmOptions) -> SlurmOptions {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        SlurmOptions {
            partition: pick(&self.partition, &over.partition),
            time: pick(&self.time, &over.time),
            account: pick(&self.account, &over.account),
            qos: pick(&self.qos, &over.qos),
            cpus_per_task: over.cpus_per_task.or(self.cpus_per_task),
            mem: pick(&self.mem, &over.mem),
            extra_args: self.extra_args.iter().chain(&over.extra_args).cloned().collect(),
        }
    }

    /// The first problem of these options: (field, what is wrong, the fix).
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        if let Some(t) = &self.time {
            if let Err(e) = check_time(t) {
                return Some(("time", e, TIME_FIX.into()));
            }
        }
        if let Some(m) = &self.mem {
            if let Err(e) = check_mem(m) {
                return Some(("mem", e, MEM_FIX.into()));
            }
        }
        if self.cpus_per_task == Some(0) {
            return Some(("cpus_per_task", "must be 1 or more".into(), "write 1 or more".into()));
        }
        for (name, v) in
            [("partition", &self.partition), ("account", &self.account), ("qos", &self.qos)]
        {
            if v.as_deref().is_some_and(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
            {
                return Some((name, "must be one word".into(), format!("give the {name} name")));
            }
        }
        for a in &self.extra_args {
            if let Err(e) = check_extra_arg(a) {
                return Some(("extra_args", e, EXTRA_FIX.into()));
            }
        }
        None
    }
}

const TIME_FIX: &str = "write minutes (`30`), `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, \
                        `D-HH:MM:SS` or `UNLIMITED`, as sbatch --time takes them";
const MEM_FIX: &str = "write a number with an optional unit K, M, G or T, e.g. `4G`";
const EXTRA_FIX: &str = "give each sbatch option as one word starting with `-`, e.g. \
                         `--constraint=avx2`; batch-client sets --array, --output, --error, \
                         --chdir and --job-name itself";

/// Accepts `30` as well as `"30"` (YAML reads an unquoted number as a number).
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(u64),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Text(t) => t,
        Scalar::Int(n) => n.to_string(),
    }))
}

/// A Slurm time limit as `sbatch --time` takes it.
pub fn check_time(s: &str) -> Result<String, String> {
    let t = s.trim();
    if matches!(t.to_ascii_uppercase().as_str(), "UNLIMITED" | "INFINITE") {
        return Ok(t.to_string());
    }
    let digits = |p: &str| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if days.is_none_or(digits) && parts.len() <= 3 && parts.iter().all(|p| digits(p)) {
        Ok(t.to_string())
    } else {
        Err(format!("{s:?} is not a Slurm time limit"))
    }
}

/// A Slurm memory size as `sbatch --mem` takes it.
pub fn check_mem(s: &str) -> Result<String, String> {
    let t = s.trim();
    let number = t.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let unit_len = t.len() - number.len();
    if !number.is_empty() && unit_len <= 1 && number.chars().all(|c| c.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(format!("{s:?} is not a memory size"))
    }
}

/// One extra `sbatch` argument: an option word, and none that batch-client sets itself.
pub fn check_extra_arg(s: &str) -> Result<String, String> {
    const OURS: &[&str] =
        &["--array", "-a", "--output", "-o", "--error", "-e", "--chdir", "-D", "--job-name", "-J"];
    let name = s.split('=').next().unwrap_or_default();
    if !s.starts_with('-') || s.contains(char::is_whitespace) {
        Err(format!("{s:?} is not one sbatch option word"))
    } else if OURS.contains(&name) || s.starts_with("--parsable") || s.starts_with("--wrap") {
        Err(format!("{s:?} is set by batch-client"))
    } else {
        Ok(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_values_are_checked_as_sbatch_takes_them() {
        for ok in ["30", "10:00", "1:00:00", "2-12", "2-12:30", "1-0:0:1", "UNLIMITED"] {
            assert!(check_time(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1h", "1:2:3:4", "-5", "ten", "1-"] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
        for ok in ["4000", "4G", "512m"] {
            assert!(check_mem(ok).is_ok(), "{ok}");
        }
        for bad in ["", "G", "4GB", "4 G", "-1"] {
            assert!(check_mem(bad).is_err(), "{bad}");
        }
        assert!(check_extra_arg("--constraint=avx2").is_ok());
        assert!(check_extra_arg("--array=0-3").unwrap_err().contains("set by batch-client"));
        assert!(check_extra_arg("constraint").is_err());
    }

    /// `config.slurm` is read with the manifest; its errors name the line, field and fix.
    #[test]
    fn the_manifest_section_is_read_and_checked() {
        let parse = |slurm: &str| {
            let text =
                format!("config:\n  output_dir: out\n  slurm: {slurm}\njobs:\n  - {{name: a}}\n");
            crate::manifest::parse(&text, std::path::Path::new("m.yaml"))
        };
        let m = parse("{partition: short, time: 30, cpus_per_task: 4, extra_args: [--nice=5]}")
            .unwrap();
        assert_eq!(m.config.slurm.time.as_deref(), Some("30"));
        assert_eq!(m.config.slurm.cpus_per_task, Some(4));
        assert_eq!(m.config.slurm.extra_args, ["--nice=5"]);
        let e = parse("{time: 1h}").unwrap_err();
        assert_eq!((e.field.as_deref(), e.line), (Some("config.slurm.time"), Some(3)), "{e}");
        assert!(e.fix.contains("HH:MM:SS"), "{e}");
        let e = parse("{partion: short}").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.fix.contains("did you mean `partition`"), "{e}");
        let e = parse("{extra_args: [--array=1-3]}").unwrap_err();
        assert!(e.message.contains("set by batch-client"), "{e}");
    }

    #[test]
    fn flags_win_over_the_manifest_and_extra_args_add_up() {
        let manifest = SlurmOptions {
            partition: Some("short".into()),
            time: Some("10".into()),
            extra_args: vec!["--nice=5".into()],
            ..Default::default()
        };
        let flags = SlurmOptions {
            time: Some("20".into()),
            extra_args: vec!["--qos=low".into()],
            ..Default::default()
        };
        let both = manifest.overlaid(&flags);
        assert_eq!(both.partition.as_deref(), Some("short"));
        assert_eq!(both.time.as_deref(), Some("20"));
        assert_eq!(both.extra_args, ["--nice=5", "--qos=low"]);
    }
}
