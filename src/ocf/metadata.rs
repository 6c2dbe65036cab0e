//! The agent description: parsed from `metadata/<agent>.xml` (embedded at
//! build time), it is the single source of the meta-data XML in both
//! accepted forms, of parameter types, defaults and required flags, of the
//! action timeouts, and of the man pages.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    pub reloadable: bool,
    pub kind: ParamType,
    pub default: Option<String>,
    pub shortdesc: String,
    pub longdesc: String,
}

#[derive(Debug, Clone)]
pub struct ActionSpec {
    pub name: String,
    pub timeout: String,
    pub interval: Option<String>,
    pub depth: Option<String>,
    pub start_delay: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub name: String,
    /// The agent's own version (the `version` attribute).
    pub agent_version: String,
    pub shortdesc: String,
    pub longdesc: String,
    pub params: Vec<ParamSpec>,
    pub actions: Vec<ActionSpec>,
}

/// Which meta-data form to print.
///
/// * `Ocf11` (`<version>1.1</version>`): `reload-agent` and `reloadable`
///   parameters; valid against the OCF 1.1 schema. Printed when the caller
///   declares OCF 1.1 or later (`OCF_RA_VERSION_MAJOR/MINOR`, as Pacemaker
///   2.1+ does).
/// * `Ocf10` (`<version>1.0</version>`, with the DOCTYPE): everything the 1.0
///   DTD allows, so valid against both `ra-api-1.dtd` and the OCF 1.1 schema.
///   Printed to callers that declare no version (ocf-tester, old tools);
///   nothing is reloadable for them, so every change restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Ocf10,
    Ocf11,
}

// --- source parsing (serde over quick-xml) ---

#[derive(Deserialize)]
struct XAgent {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@version")]
    version: String,
    longdesc: XText,
    shortdesc: XText,
    parameters: XParams,
    actions: XActions,
}
#[derive(Deserialize)]
struct XText {
    #[serde(rename = "$text", default)]
    text: String,
}
#[derive(Deserialize)]
struct XParams {
    parameter: Vec<XParam>,
}
#[derive(Deserialize)]
struct XParam {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@required", default)]
    required: Option<String>,
    #[serde(rename = "@unique", default)]
    unique: Option<String>,
    #[serde(rename = "@reloadable", default)]
    reloadable: Option<String>,
    longdesc: XText,
    shortdesc: XText,
    content: XContent,
}
#[derive(Deserialize)]
struct XContent {
    #[serde(rename = "@type")]
    kind: String,
    #[serde(rename = "@default", default)]
    default: Option<String>,
}
#[derive(Deserialize)]
struct XActions {
    action: Vec<XAction>,
}
#[derive(Deserialize)]
struct XAction {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@timeout")]
    timeout: String,
    #[serde(rename = "@interval", default)]
    interval: Option<String>,
    #[serde(rename = "@depth", default)]
    depth: Option<String>,
    #[serde(rename = "@start-delay", default)]
    start_delay: Option<String>,
    #[serde(rename = "@role", default)]
    role: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("1") | Some("true"))
}

/// Collapse the source's indentation: paragraphs are separated by blank lines.
fn tidy(s: &str) -> String {
    s.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

impl Metadata {
    /// Parse an agent description. Panics are not used: an invalid embedded
    /// description is a build defect that the unit tests catch.
    pub fn parse(xml: &str) -> Result<Metadata, String> {
        let x: XAgent = quick_xml::de::from_str(xml).map_err(|e| e.to_string())?;
        let mut params = Vec::new();
        for p in x.parameters.parameter {
            let kind = match p.content.kind.as_str() {
                "string" => ParamType::String,
                "integer" => ParamType::Integer,
                "boolean" => ParamType::Boolean,
                other => return Err(format!("parameter {}: unsupported type {other}", p.name)),
            };
            params.push(ParamSpec {
                required: flag(&p.required),
                unique: flag(&p.unique),
                reloadable: flag(&p.reloadable),
                kind,
                default: p.content.default,
                shortdesc: tidy(&p.shortdesc.text),
                longdesc: tidy(&p.longdesc.text),
                name: p.name,
            });
        }
        let actions = x
            .actions
            .action
            .into_iter()
            .map(|a| ActionSpec {
                name: a.name,
                timeout: a.timeout,
                interval: a.interval,
                depth: a.depth,
                start_delay: a.start_delay,
                role: a.role,
            })
            .collect();
        Ok(Metadata {
            name: x.name,
            agent_version: x.version,
            shortdesc: tidy(&x.shortdesc.text),
            longdesc: tidy(&x.longdesc.text),
            params,
            actions,
        })
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn has_reloadable(&self) -> bool {
        self.params.iter().any(|p| p.reloadable)
    }

    /// The advertised timeout of an action (the first entry of that name).
    pub fn action_timeout(&self, action: &str) -> Option<Duration> {
        self.actions
            .iter()
            .find(|a| a.name == action)
            .and_then(|a| parse_duration(&a.timeout))
    }

    /// Render the meta-data XML in the given form.
    pub fn render(&self, form: Form) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        let ok = self.write(&mut w, form);
        debug_assert!(ok.is_ok());
        let mut s = String::from_utf8(w.into_inner()).expect("utf-8");
        s.push('\n');
        s
    }

    fn write(&self, w: &mut Writer<Vec<u8>>, form: Form) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        if form == Form::Ocf10 {
            w.write_event(Event::DocType(BytesText::from_escaped(
                r#"resource-agent SYSTEM "ra-api-1.dtd""#,
            )))?;
        }
        let mut root = BytesStart::new("resource-agent");
        root.push_attribute(("name", self.name.as_str()));
        root.push_attribute(("version", self.agent_version.as_str()));
        w.write_event(Event::Start(root))?;
        let ocf_version = match form {
            Form::Ocf10 => "1.0",
            Form::Ocf11 => "1.1",
        };
        text_element(w, "version", &[], ocf_version)?;
        text_element(w, "longdesc", &[("lang", "en")], &self.longdesc)?;
        text_element(w, "shortdesc", &[("lang", "en")], &self.shortdesc)?;
        w.write_event(Event::Start(BytesStart::new("parameters")))?;
        for p in &self.params {
            let mut e = BytesStart::new("parameter");
            e.push_attribute(("name", p.name.as_str()));
            e.push_attribute(("unique", if p.unique { "1" } else { "0" }));
            e.push_attribute(("required", if p.required { "1" } else { "0" }));
            if form == Form::Ocf11 && p.reloadable {
                e.push_attribute(("reloadable", "1"));
            }
            w.write_event(Event::Start(e))?;
            text_element(w, "longdesc", &[("lang", "en")], &p.longdesc)?;
            text_element(w, "shortdesc", &[("lang", "en")], &p.shortdesc)?;
            let mut c = BytesStart::new("content");
            c.push_attribute((
                "type",
                match p.kind {
                    ParamType::String => "string",
                    ParamType::Integer => "integer",
                    ParamType::Boolean => "boolean",
                },
            ));
            if let Some(d) = &p.default {
                c.push_attribute(("default", d.as_str()));
            }
            w.write_event(Event::Empty(c))?;
            w.write_event(Event::End(BytesEnd::new("parameter")))?;
        }
        w.write_event(Event::End(BytesEnd::new("parameters")))?;
        w.write_event(Event::Start(BytesStart::new("actions")))?;
        for a in &self.actions {
            if form == Form::Ocf10 && a.name == "reload-agent" {
                continue;
            }
            let mut e = BytesStart::new("action");
            e.push_attribute(("name", a.name.as_str()));
            e.push_attribute(("timeout", a.timeout.as_str()));
            for (k, v) in [
                ("interval", &a.interval),
                ("depth", &a.depth),
                ("start-delay", &a.start_delay),
                ("role", &a.role),
            ] {
                if let Some(v) = v {
                    e.push_attribute((k, v.as_str()));
                }
            }
            w.write_event(Event::Empty(e))?;
        }
        w.write_event(Event::End(BytesEnd::new("actions")))?;
        w.write_event(Event::End(BytesEnd::new("resource-agent")))?;
        Ok(())
    }
}

impl Metadata {
    /// A Markdown table of the parameters (for the README; kept in sync by a
    /// test).
    pub fn render_markdown(&self) -> String {
        let mut s = String::from("| parameter | default | description |\n|---|---|---|\n");
        for p in &self.params {
            let mut name = format!("`{}`", p.name);
            if p.required {
                name.push_str(" (required)");
            }
            if p.reloadable {
                name.push_str(" (reloadable)");
            }
            let default = p
                .default
                .as_deref()
                .map(|d| format!("`{d}`"))
                .unwrap_or_default();
            let desc = p.longdesc.replace("\n\n", " ").replace('|', "\\|");
            s.push_str(&format!("| {name} | {default} | {desc} |\n"));
        }
        s
    }
}

impl Metadata {
    /// The agent's manual page, `ocf_<provider>_<agent>(7)` in the layout of
    /// resource-agents' generated pages: NAME, SYNOPSIS, DESCRIPTION,
    /// SUPPORTED PARAMETERS, SUPPORTED ACTIONS, EXAMPLE CRM SHELL,
    /// EXAMPLE PCS, SEE ALSO. troff source, no date (reproducible builds).
    pub fn render_man(&self) -> String {
        let provider = "hanfs";
        let page = format!("ocf_{provider}_{}", self.name);
        let mut s = String::new();
        s.push_str(&format!(
            ".\\\" Generated from the agent's meta-data (metadata/{}.xml); do not edit.\n",
            self.name
        ));
        s.push_str(&format!(
            ".TH \"{}\" \"7\" \"\" \"{provider} {}\" \"OCF resource agents\"\n",
            man_escape(&page.to_uppercase()).replace('"', ""),
            man_escape(&self.agent_version).replace('"', ""),
        ));
        s.push_str(".nh\n.ad l\n");
        s.push_str(".SH \"NAME\"\n");
        s.push_str(&format!(
            "{} \\- {}\n",
            man_escape(&page),
            man_escape(&self.shortdesc)
        ));
        s.push_str(".SH \"SYNOPSIS\"\n");
        let mut actions: Vec<&str> = Vec::new();
        for a in &self.actions {
            if !actions.contains(&a.name.as_str()) {
                actions.push(&a.name);
            }
        }
        s.push_str(&format!(
            "\\fB{}\\fR [{}]\n",
            man_escape(&self.name),
            man_escape(&actions.join(" | "))
        ));
        s.push_str(".SH \"DESCRIPTION\"\n");
        for para in self.longdesc.split("\n\n") {
            s.push_str(".PP\n");
            s.push_str(&man_line(para));
        }
        s.push_str(".SH \"SUPPORTED PARAMETERS\"\n");
        for p in &self.params {
            s.push_str(&format!(".PP\n\\fB{}\\fR\n.RS 4\n", man_escape(&p.name)));
            for para in p.longdesc.split("\n\n").filter(|x| !x.is_empty()) {
                s.push_str(&man_line(para));
                s.push_str(".sp\n");
            }
            let mut facts = vec![if p.required { "required" } else { "optional" }];
            if p.unique {
                facts.push("unique");
            }
            if p.reloadable {
                facts.push("reloadable");
            }
            facts.push(match p.kind {
                ParamType::String => "string",
                ParamType::Integer => "integer",
                ParamType::Boolean => "boolean",
            });
            let default = match &p.default {
                Some(d) => format!("default \\fB{}\\fR", man_escape(d)),
                None => "no default".to_string(),
            };
            s.push_str(&format!("({}, {default})\n.RE\n", facts.join(", ")));
        }
        s.push_str(".SH \"SUPPORTED ACTIONS\"\n.PP\nThis resource agent supports the following actions (operations):\n");
        for a in &self.actions {
            let what = match a.name.as_str() {
                "start" => "Starts the resource.".to_string(),
                "stop" => "Stops the resource.".to_string(),
                "monitor" => match a.depth.as_deref() {
                    Some(d) if d != "0" => {
                        format!("Checks the resource thoroughly (OCF_CHECK_LEVEL={d}).")
                    }
                    _ => "Checks the resource.".to_string(),
                },
                "meta-data" => "Prints the resource agent meta-data.".to_string(),
                "validate-all" => "Validates the resource configuration.".to_string(),
                "reload-agent" => {
                    "Applies a change of reloadable parameters without a restart (OCF 1.1 callers)."
                        .to_string()
                }
                other => format!("The {other} action."),
            };
            let mut line = format!("{what} Suggested minimum timeout: {}.", a.timeout);
            if let Some(i) = &a.interval {
                line.push_str(&format!(" Suggested interval: {i}."));
            }
            s.push_str(&format!(".PP\n\\fB{}\\fR\n.RS 4\n", man_escape(&a.name)));
            s.push_str(&man_line(&line));
            s.push_str(".RE\n");
        }
        let required: Vec<&ParamSpec> = self.params.iter().filter(|p| p.required).collect();
        let monitor = self.actions.iter().find(|a| a.name == "monitor");
        let placeholder = |p: &ParamSpec| {
            format!(
                "{}=\\fI{}\\fR",
                man_escape(&p.name),
                match p.kind {
                    ParamType::String => "string",
                    ParamType::Integer => "integer",
                    ParamType::Boolean => "boolean",
                }
            )
        };
        let rsc = format!("p_{}", man_escape(&self.name.replace('-', "_")));
        let agent = format!("ocf:{provider}:{}", man_escape(&self.name));
        // The recurring monitor, with its depth under the tool's name for it.
        let monitor_op = |depth_key: &str| {
            monitor.map(|m| {
                let mut op = String::from("  op monitor");
                if let Some(d) = &m.depth {
                    op.push_str(&format!(" {depth_key}=\"{d}\""));
                }
                op.push_str(&format!(" timeout=\"{}\"", m.timeout));
                if let Some(i) = &m.interval {
                    op.push_str(&format!(" interval=\"{i}\""));
                }
                op
            })
        };
        s.push_str(".SH \"EXAMPLE CRM SHELL\"\n.PP\n");
        s.push_str("An example configuration of this agent using the \\fBcrm\\fR(8) shell:\n");
        s.push_str(".sp\n.RS 4\n.nf\n");
        s.push_str(&format!("primitive {rsc} {agent} \\e\n"));
        if !required.is_empty() {
            s.push_str("  params \\e\n");
            for p in &required {
                s.push_str(&format!("    {} \\e\n", placeholder(p)));
            }
        }
        if let Some(op) = monitor_op("depth") {
            s.push_str(&man_escape(&op));
            s.push('\n');
        }
        s.push_str(".fi\n.RE\n");
        s.push_str(".SH \"EXAMPLE PCS\"\n.PP\n");
        s.push_str("An example configuration of this agent using \\fBpcs\\fR(8):\n");
        s.push_str(".sp\n.RS 4\n.nf\n");
        s.push_str(&format!("pcs resource create {rsc} {agent} \\e\n"));
        for p in &required {
            s.push_str(&format!("  {} \\e\n", placeholder(p)));
        }
        if let Some(op) = monitor_op("OCF_CHECK_LEVEL") {
            s.push_str(&man_escape(&op));
            s.push('\n');
        }
        s.push_str(".fi\n.RE\n");
        s.push_str(".SH \"SEE ALSO\"\n.PP\n");
        s.push_str("\\fBpcs\\fR(8), \\fBcrm_resource\\fR(8), \\fBocf-tester\\fR(8), /usr/share/doc/hanfs/README.md\n");
        s
    }
}

/// Escape text for troff: backslashes, and hyphens as `\-` (so that
/// commands and options copy and paste as typed).
fn man_escape(t: &str) -> String {
    t.replace('\\', "\\e").replace('-', "\\-")
}

/// One paragraph as a troff text line: escaped, and protected from being
/// read as a request when it starts with `.` or `'`.
fn man_line(t: &str) -> String {
    let e = man_escape(t.trim());
    if e.starts_with('.') || e.starts_with('\'') {
        format!("\\&{e}\n")
    } else {
        format!("{e}\n")
    }
}

fn text_element(
    w: &mut Writer<Vec<u8>>,
    name: &str,
    attrs: &[(&str, &str)],
    text: &str,
) -> std::io::Result<()> {
    let mut e = BytesStart::new(name);
    for a in attrs {
        e.push_attribute(*a);
    }
    w.write_event(Event::Start(e))?;
    w.write_event(Event::Text(BytesText::new(text)))?;
    w.write_event(Event::End(BytesEnd::new(name)))?;
    Ok(())
}

/// Parse a Pacemaker-style duration: "20", "20s", "500ms", "2m", "1h".
/// A bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "s" | "sec" => n.checked_mul(1000)?,
        "ms" | "msec" => n,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" | "hr" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0"?>
<resource-agent name="demo" version="0.1.0">
  <version>1.1</version>
  <longdesc lang="en">Line one
     continues.

     Second paragraph &amp; more.</longdesc>
  <shortdesc lang="en">Demo</shortdesc>
  <parameters>
    <parameter name="ip" required="1" unique="1">
      <longdesc lang="en">The address.</longdesc>
      <shortdesc lang="en">Address</shortdesc>
      <content type="string"/>
    </parameter>
    <parameter name="count" reloadable="1">
      <longdesc lang="en">How many.</longdesc>
      <shortdesc lang="en">Count</shortdesc>
      <content type="integer" default="5"/>
    </parameter>
  </parameters>
  <actions>
    <action name="start" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s" depth="0"/>
    <action name="reload-agent" timeout="10s"/>
  </actions>
</resource-agent>"#;

    #[test]
    fn parses_source() {
        let m = Metadata::parse(SAMPLE).unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(
            m.longdesc,
            "Line one continues.\n\nSecond paragraph & more."
        );
        assert_eq!(m.params.len(), 2);
        assert!(m.params[0].required && m.params[0].unique && !m.params[0].reloadable);
        assert_eq!(m.params[1].kind, ParamType::Integer);
        assert_eq!(m.params[1].default.as_deref(), Some("5"));
        assert!(m.params[1].reloadable);
        assert_eq!(m.action_timeout("start"), Some(Duration::from_secs(20)));
        assert_eq!(m.action_timeout("stop"), None);
    }

    #[test]
    fn forms_differ_only_in_reload_support() {
        let m = Metadata::parse(SAMPLE).unwrap();
        let v10 = m.render(Form::Ocf10);
        let v11 = m.render(Form::Ocf11);
        assert!(v10.contains("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"));
        assert!(v10.contains("<version>1.0</version>"));
        assert!(!v10.contains("reload"));
        assert!(v11.contains("<version>1.1</version>"));
        assert!(v11.contains(r#"<action name="reload-agent" timeout="10s"/>"#));
        assert!(v11.contains(r#"reloadable="1""#));
        assert!(v11.contains("Second paragraph &amp; more."));
        // round trip
        let back = Metadata::parse(&v11).unwrap();
        assert!(back.params[1].reloadable);
        assert_eq!(back.longdesc, m.longdesc);
    }

    #[test]
    fn man_page_has_the_resource_agents_sections() {
        let m = Metadata::parse(SAMPLE).unwrap();
        let man = m.render_man();
        assert!(man.contains(".TH \"OCF_HANFS_DEMO\" \"7\""), "{man}");
        for sec in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "SUPPORTED PARAMETERS",
            "SUPPORTED ACTIONS",
            "EXAMPLE CRM SHELL",
            "EXAMPLE PCS",
            "SEE ALSO",
        ] {
            assert!(man.contains(&format!(".SH \"{sec}\"\n")), "{sec}");
        }
        assert!(man.contains("ocf_hanfs_demo \\- Demo\n"));
        assert!(man.contains("\\fBdemo\\fR [start | monitor | reload\\-agent]\n"));
        // Paragraphs of the description, in order.
        let d = man.find("Line one continues.").unwrap();
        let e = man.find("Second paragraph & more.").unwrap();
        assert!(d < e);
        assert!(man.contains(
            "\\fBip\\fR\n.RS 4\nThe address.\n.sp\n(required, unique, string, no default)\n.RE\n"
        ));
        assert!(man.contains("(optional, reloadable, integer, default \\fB5\\fR)"));
        assert!(man.contains("Suggested minimum timeout: 20s. Suggested interval: 10s."));
        assert!(man.contains("pcs resource create p_demo ocf:hanfs:demo \\e\n  ip=\\fIstring\\fR \\e\n  op monitor OCF_CHECK_LEVEL=\"0\" timeout=\"20s\" interval=\"10s\"\n"));
        assert!(man.contains("primitive p_demo ocf:hanfs:demo \\e\n  params \\e\n    ip=\\fIstring\\fR \\e\n  op monitor depth=\"0\""));
    }

    #[test]
    fn man_text_cannot_become_troff_requests() {
        assert_eq!(man_line(".hidden request"), "\\&.hidden request\n");
        assert_eq!(man_line("'quoted"), "\\&'quoted\n");
        assert_eq!(man_line("a\\b -v"), "a\\eb \\-v\n");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }
}
