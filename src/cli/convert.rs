//! The second stage of the command line: what the user typed (the clap
//! types of [`super`]) turned into each module's own options type.

use super::*;

impl EditArgs {
    fn options(self, edit: propose::policy_edit::Edit) -> propose::policy_write::EditOptions {
        propose::policy_write::EditOptions {
            edit,
            policy: self.policy,
            root: self.root,
            from: self.from,
            json: self.json,
        }
    }
}

impl EditSpecsArgs {
    /// `autofw allow`'s options.
    pub fn allow(self) -> propose::policy_write::EditOptions {
        self.edit
            .options(propose::policy_edit::Edit::Allow(self.specs))
    }
    /// `autofw block`'s options.
    pub fn block(self) -> propose::policy_write::EditOptions {
        self.edit
            .options(propose::policy_edit::Edit::Block(self.specs))
    }
}

impl From<LimitArgs> for propose::policy_write::EditOptions {
    fn from(args: LimitArgs) -> Self {
        args.edit
            .options(propose::policy_edit::Edit::Limit(args.spec))
    }
}

impl From<SourceArgs> for propose::policy_write::EditOptions {
    fn from(args: SourceArgs) -> Self {
        args.edit
            .options(propose::policy_edit::Edit::Source(args.spec))
    }
}

impl From<ForgetArgs> for propose::policy_write::EditOptions {
    fn from(args: ForgetArgs) -> Self {
        args.edit
            .options(propose::policy_edit::Edit::Forget(args.spec))
    }
}

impl From<RefreshArgs> for crate::blocklist::refresh::RefreshOptions {
    fn from(args: RefreshArgs) -> Self {
        crate::blocklist::refresh::RefreshOptions {
            state_dir: args.state.state_dir,
            skip_bad_lines: args.skip_bad_lines,
            root: args.root.root,
            force: args.force,
        }
    }
}

impl From<DisableArgs> for firewall::apply::disable::DisableOptions {
    fn from(args: DisableArgs) -> Self {
        firewall::apply::disable::DisableOptions {
            state_dir: args.state.state_dir,
            root: args.root.root,
        }
    }
}

impl From<SocketSource> for scan::SocketSource {
    fn from(source: SocketSource) -> Self {
        match source {
            SocketSource::Auto => scan::SocketSource::Auto,
            SocketSource::Netlink => scan::SocketSource::Netlink,
            SocketSource::Proc => scan::SocketSource::Proc,
        }
    }
}

impl From<OwnerSourceArg> for scan::OwnerSource {
    fn from(source: OwnerSourceArg) -> Self {
        match source {
            OwnerSourceArg::Auto => scan::OwnerSource::Auto,
            OwnerSourceArg::Proc => scan::OwnerSource::Walk,
            OwnerSourceArg::Bpf => scan::OwnerSource::Iterator,
        }
    }
}

impl From<FormatArg> for propose::Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Nft => propose::Format::Nft,
            FormatArg::Iptables => propose::Format::Iptables,
            FormatArg::Ip6tables => propose::Format::Ip6tables,
        }
    }
}

impl From<ScanArgs> for scan::ScanOptions {
    fn from(args: ScanArgs) -> Self {
        scan::ScanOptions {
            all: args.all,
            json: args.json,
            source: args.source.into(),
            owners_from: args.owners_from.into(),
            fixture: args.fixture,
        }
    }
}

impl From<PolicyArgs> for propose::PolicyOptions {
    fn from(args: PolicyArgs) -> Self {
        propose::PolicyOptions {
            allow: args.allow,
            block: args.block,
            limit: args.limit,
            source: args.source,
            blocklist: args.blocklist,
            skip_bad_lines: args.skip_bad_lines,
            policy: args.policy,
            no_policy: args.no_policy,
            root: None,
            from: args.from,
        }
    }
}

impl From<ProposeArgs> for propose::ProposeOptions {
    fn from(args: ProposeArgs) -> Self {
        propose::ProposeOptions {
            policy: args.policy.into(),
            format: args.format.into(),
            out: args.out,
            json: args.json,
            ipset: args.ipset,
        }
    }
}

impl From<ApplyArgs> for firewall::apply::ApplyOptions {
    fn from(args: ApplyArgs) -> Self {
        // The default policy is looked for under --root, as the boot files are.
        let mut policy: propose::PolicyOptions = args.policy.into();
        policy.root = Some(args.root.root.clone());
        firewall::apply::ApplyOptions {
            policy,
            confirm: args.confirm,
            yes: args.yes,
            timeout: args.timeout,
            backend: args.backend,
            force: args.force,
            json: args.json,
            no_wait: args.no_wait,
            guard: args.guard,
            persist: args.persist,
            verbose: args.verbose,
            root: args.root.root,
            state_dir: args.state.state_dir,
        }
    }
}

impl From<StatusArgs> for status::StatusOptions {
    fn from(args: StatusArgs) -> Self {
        status::StatusOptions {
            format: if args.json {
                status::OutputFormat::Json
            } else {
                args.format.into()
            },
            out: args.out,
            state_dir: args.state.state_dir,
        }
    }
}

impl From<StatusFormatArg> for status::OutputFormat {
    fn from(format: StatusFormatArg) -> Self {
        match format {
            StatusFormatArg::Text => status::OutputFormat::Text,
            StatusFormatArg::Json => status::OutputFormat::Json,
            StatusFormatArg::Prometheus => status::OutputFormat::Prometheus,
        }
    }
}

impl From<LogArgs> for droplog::LogOptions {
    fn from(args: LogArgs) -> Self {
        droplog::LogOptions {
            file: args.file,
            since: args.since,
            top: args.top,
            json: args.json,
        }
    }
}
