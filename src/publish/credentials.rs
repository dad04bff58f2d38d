//! Credentials from the AWS shared files, for a machine set up with `aws configure` rather
//! than environment variables: the profile `AWS_PROFILE` names (else `default`) in
//! `AWS_SHARED_CREDENTIALS_FILE` (else `~/.aws/credentials`), and its region in
//! `AWS_CONFIG_FILE` (else `~/.aws/config`, section `[profile NAME]` or `[default]`).
//! Only static keys: SSO and role chains are for the environment or an instance role.

use std::collections::HashMap;
use std::path::PathBuf;

/// Static keys of a profile, and its region if its config names one.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

/// The profile's keys, if the shared credentials file has them (a file that is not there
/// is no error; one that cannot be read is).
pub fn profile() -> anyhow::Result<Option<Found>> {
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let read = |path: Option<PathBuf>| -> anyhow::Result<String> {
        match path.map(std::fs::read_to_string) {
            None => Ok(String::new()),
            Some(Ok(text)) => Ok(text),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Some(Err(e)) => Err(anyhow::anyhow!("AWS shared credentials: {e}")),
        }
    };
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))?;
    let config = read(file("AWS_CONFIG_FILE", "config"))?;
    Ok(from_files(&name, &credentials, &config))
}

/// [`profile`] from the files' text.
pub fn from_files(name: &str, credentials: &str, config: &str) -> Option<Found> {
    let keys = sections(credentials).remove(name)?;
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let region = sections(config)
        .remove(&config_section)
        .and_then(|mut s| s.remove("region"));
    let mut keys = keys;
    Some(Found {
        access_key_id: keys.remove("aws_access_key_id")?,
        secret_access_key: keys.remove("aws_secret_access_key")?,
        session_token: keys.remove("aws_session_token"),
        region,
    })
}

/// An INI file's sections: name → key → value (`#` and `;` lines are comments).
fn sections(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_string());
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_with_its_region() {
        let credentials = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n# c\n[work]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n";
        let config = "[default]\nregion = eu-west-1\n[profile work]\nregion=us-east-2\n";
        assert_eq!(
            from_files("work", credentials, config),
            Some(Found {
                access_key_id: "C".into(),
                secret_access_key: "D".into(),
                session_token: Some("T".into()),
                region: Some("us-east-2".into()),
            })
        );
        let default = from_files("default", credentials, config).unwrap();
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(from_files("other", credentials, config), None);
        assert_eq!(
            from_files("default", "[default]\naws_access_key_id=A\n", ""),
            None
        );
    }
}
