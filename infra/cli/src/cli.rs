//! The command line (SPEC §10): flag names are contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fleetgate_scopes::RateLimit;

#[derive(Debug, Parser)]
#[command(
    name = "fleetgate",
    version,
    about = "Manage Fleetgate tenants, API keys, inspection templates and the audit trail.",
    long_about = "Manage Fleetgate tenants, API keys, inspection templates and the audit trail.\n\n\
                  Every command is one or more calls to the stack's provisioner function: \
                  the local stack's (--local), or a deployed stack's (--stack NAME or \
                  --function NAME, with AWS credentials, profile and region as the AWS CLI \
                  takes them).",
    after_help = "Exit codes: 0 done, 1 refused by the provisioner, 2 usage error, 3 target unreachable."
)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the provisioner's answer as one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is asking, kept in the audit record (default: $USER, else $LOGNAME).
    #[arg(long, global = true, value_name = "WHO", env = "FLEETGATE_REQUESTED_BY")]
    pub requested_by: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the provisioner is. Exactly one (`--stack` may come from `FLEETGATE_STACK`).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The local stack of `make dev`: its invoke API on 127.0.0.1:9000.
    #[arg(long, global = true, conflicts_with_all = ["endpoint", "stack", "function"])]
    pub local: bool,
    /// A local stack's invoke API at URL (e.g. http://127.0.0.1:9100, `make test`'s).
    #[arg(long, global = true, value_name = "URL", conflicts_with_all = ["stack", "function"])]
    pub endpoint: Option<String>,
    /// A deployed stack: the provisioner's name comes from its `ProvisionerFunctionName` output.
    #[arg(long, global = true, value_name = "NAME", env = "FLEETGATE_STACK", conflicts_with = "function")]
    pub stack: Option<String>,
    /// The provisioner function's name or ARN on AWS.
    #[arg(long, global = true, value_name = "NAME")]
    pub function: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// API keys: create, list, show, rotate, revoke, restrict, review.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspection templates: put one from a JSON or YAML file, list them.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// A tenant's audit trail, newest first (every admin action and refused write).
    Audit(AuditArgs),
    /// Tenants: create, list, show, and cap a fleet's keys together.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Webhooks: `listen` runs a local receiver that verifies and prints deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Print a completion script: `source <(fleetgate completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct Tenant {
    /// The tenant (fleet) id.
    #[arg(long = "tenant", value_name = "T")]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create(CreateKey),
    /// List a tenant's keys, newest first (revoked ones with --all).
    List {
        #[command(flatten)]
        tenant: Tenant,
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
    },
    /// Show one key with this month's usage.
    Show {
        #[command(flatten)]
        tenant: Tenant,
        key_id: String,
    },
    /// Replace a key by a new one (same scopes and restrictions); the old one works for the grace period.
    Rotate {
        #[command(flatten)]
        tenant: Tenant,
        key_id: String,
        /// Hours the old key keeps working (0–168; default 24).
        #[arg(long, value_name = "H")]
        grace_hours: Option<u32>,
    },
    /// Revoke a key (and the keys it replaced that still work).
    Revoke {
        #[command(flatten)]
        tenant: Tenant,
        key_id: String,
        /// Why, kept with the key and in the audit record.
        #[arg(long, value_name = "R")]
        reason: Option<String>,
    },
    /// Change a live key's rate limit, monthly quota or allowed networks.
    Restrict(RestrictKey),
    /// Access review: keys never or long unused, expiring, in a rotation's grace,
    /// and the scopes each key was granted but does not use.
    Review {
        #[command(flatten)]
        tenant: Tenant,
        /// A key or scope unused this many days is flagged (1–365).
        #[arg(long, value_name = "N", default_value_t = 30)]
        unused_days: u32,
        /// Offer to revoke each key never used or unused for N days.
        #[arg(long)]
        revoke_unused: bool,
        /// With --revoke-unused: revoke without asking.
        #[arg(long, requires = "revoke_unused")]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateKey {
    #[command(flatten)]
    pub tenant: Tenant,
    /// A name for the key (the device or integration it is for).
    #[arg(long, value_name = "N")]
    pub name: String,
    /// A scope preset: read-only, full-fleet, inspector…
    #[arg(long, value_name = "P", required_unless_present = "scopes", conflicts_with = "scopes")]
    pub preset: Option<String>,
    /// A scope to grant (repeat for more), e.g. --scope vehicles:read.
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    #[arg(long, value_name = "D")]
    pub description: Option<String>,
    /// The key expires this many days from now (1–3650).
    #[arg(long, value_name = "N")]
    pub expires_in_days: Option<u32>,
    /// The key's rate limit, N/second or N/minute, optionally /BURST (default: the deployment's).
    #[arg(long, value_name = "N/second|N/minute")]
    pub rate: Option<RateLimit>,
    /// Requests per UTC calendar month.
    #[arg(long, value_name = "N")]
    pub monthly_quota: Option<u64>,
    /// A network the key may be used from (repeat for more; default: any).
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    pub allow_cidrs: Vec<String>,
    /// test or live (default: the deployment's).
    #[arg(long, value_name = "ENV")]
    pub environment: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["rate", "monthly_quota", "allow_cidrs", "any_network"])))]
pub struct RestrictKey {
    #[command(flatten)]
    pub tenant: Tenant,
    pub key_id: String,
    /// The key's rate limit (N/second or N/minute, optionally /BURST), or `default`.
    #[arg(long, value_name = "N/second|default", value_parser = rate_or_lift("default"))]
    pub rate: Option<Lift<RateLimit>>,
    /// Requests per UTC calendar month, or `none`.
    #[arg(long, value_name = "N|none", value_parser = quota_or_lift)]
    pub monthly_quota: Option<Lift<u64>>,
    /// The only networks the key may be used from (repeat for more).
    #[arg(long = "allow-cidr", value_name = "CIDR", conflicts_with = "any_network")]
    pub allow_cidrs: Vec<String>,
    /// Lift the network restriction: any network.
    #[arg(long)]
    pub any_network: bool,
}

/// A new value, or lifting the setting (`null` to the provisioner).
#[derive(Clone, Debug, PartialEq)]
pub enum Lift<T> {
    Set(T),
    Lift,
}

/// `N/second[/BURST]`, or `word` (lift the limit).
fn rate_or_lift(word: &'static str) -> impl Fn(&str) -> Result<Lift<RateLimit>, String> + Clone {
    move |text| {
        if text == word {
            return Ok(Lift::Lift);
        }
        text.parse().map(Lift::Set).map_err(|e| format!("{e} (or `{word}`)"))
    }
}

fn quota_or_lift(text: &str) -> Result<Lift<u64>, String> {
    match text {
        "none" => Ok(Lift::Lift),
        n => n.parse().map(Lift::Set).map_err(|_| "a whole number of requests, or `none`".to_owned()),
    }
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Put (create or replace) an inspection template from a JSON or YAML file.
    Put {
        #[command(flatten)]
        tenant: Tenant,
        /// The template: {id, name, description?, items: [{id, label, required?, category?}]}.
        file: PathBuf,
    },
    /// List a tenant's inspection templates.
    List {
        #[command(flatten)]
        tenant: Tenant,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub tenant: Tenant,
    /// Only records at or after TIME: RFC 3339 (2026-12-01T00:00:00Z) or an age (30m, 12h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many records (1–100; default 25).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Only this action (create_key, revoke_key, …).
    #[arg(long, value_name = "A")]
    pub action: Option<String>,
    /// Keep printing new records as they come (every 2 s) until interrupted.
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant (a fleet): keys and templates belong to one.
    Create {
        #[command(flatten)]
        tenant: Tenant,
        #[arg(long, value_name = "N")]
        name: String,
    },
    /// List tenants.
    List,
    /// Show a tenant with its cap and this month's usage.
    Show {
        #[command(flatten)]
        tenant: Tenant,
    },
    /// Cap all of a tenant's keys together (N/second or N/minute, optionally /BURST), or `none`.
    Limit {
        #[command(flatten)]
        tenant: Tenant,
        #[arg(long, value_name = "N/second|none", value_parser = rate_or_lift("none"))]
        rate: Lift<RateLimit>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Receive webhook deliveries on 127.0.0.1 (like `stripe listen`): each is checked
    /// against the endpoint's secret (Standard Webhooks) and printed. Point an endpoint
    /// at http://127.0.0.1:PORT/ (the local stack allows http to loopback only).
    Listen(ListenArgs),
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The port to listen on (127.0.0.1 only).
    #[arg(long, value_name = "PORT", default_value_t = 8787)]
    pub port: u16,
    /// The endpoint's signing secret (`whsec_…`, from POST /webhooks or rotate-secret).
    /// Deliveries that do not verify are answered 401; without a secret nothing is verified.
    #[arg(long, value_name = "whsec_…", env = "FLEETGATE_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Stop after this many deliveries (default: run until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}
