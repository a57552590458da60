#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: autofw developers
# MIT OR Apache-2.0
"""The autofw module: runs the autofw binary on the managed host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: autofw
short_description: Firewall a host down to the services it runs, with autofw
description:
  - Drives the C(autofw) binary on the managed host. autofw scans the host's
    listening sockets and loads a default-drop ruleset (nftables, or
    iptables) that opens exactly those services, with an automatic rollback
    unless the new rules are confirmed from a new login.
  - O(state=facts) returns C(autofw scan --json) as C(ansible_facts.autofw),
    so a play can aggregate listeners across hosts.
  - O(state=applied) builds the ruleset from the same choices as the
    command line and loads it with a rollback window. In check mode it only
    reports whether the rules would change (C(changed) is true only when the
    loaded ruleset would differ); in diff mode it shows autofw's part of the
    firewall before and after.
  - Commit-confirm across the connection. The action plugin of the same
    name loads the rules (C(autofw apply --confirm --no-wait)), then resets
    the connection and runs C(autofw confirm) over a B(new) SSH login. If
    that login fails, the rules are not confirmed, the host's watchdog rolls
    them back at the deadline, and the task fails saying so.
  - Pre-flight lockout guard. Before anything changes, the connection
    Ansible reaches the host over (its client address and port as the host
    sees them, from C(SSH_CONNECTION), so NAT and bastions are accounted
    for) must be admitted by the new rules, or the task fails and nothing
    changes. O(guard) names another connection; O(force) skips the guard.
  - O(state=status) reports drift between listeners and rules
    (C(autofw status --json)) and fails on drift unless
    O(fail_on_drift=false).
  - O(state=confirmed) runs C(autofw confirm) alone, for plays that confirm
    in a task of their own (O(confirm=false), then C(meta) V(reset_connection),
    then O(state=confirmed)).
  - The rollout, drift and recovery story for a fleet is in docs/fleet.md
    of the autofw repository.
version_added: "0.1.0"
author:
  - autofw developers
requirements:
  - the autofw binary on the managed host (see O(binary)), run as root
  - nft (or iptables-restore for O(backend=iptables)) on the managed host
attributes:
  check_mode:
    support: full
    description: State V(applied) reports what would change and changes
      nothing; the other states only read.
  diff_mode:
    support: full
    description: State V(applied) returns autofw's part of the firewall
      before and after, as the firewall lists it.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(facts) scans; V(applied) builds and loads the ruleset; V(confirmed)
        keeps the rules of an open rollback window; V(status) reports drift.
    type: str
    choices: [facts, applied, confirmed, status]
    default: applied
  allow:
    description:
      - Services or ports to open even if nothing listens on them yet, as
        C(autofw --allow) takes them (V(https), V(8443/tcp)).
    type: list
    elements: str
    default: []
  block:
    description: Services or ports to keep closed although they listen.
    type: list
    elements: str
    default: []
  limit:
    description:
      - Rate-limit new connections per source address (V(ssh),
        V(ssh=20/minute)).
    type: list
    elements: str
    default: []
  source:
    description:
      - Only these networks may connect to a service
        (V(postgresql=192.0.2.10/32,192.0.2.11/32)).
    type: list
    elements: str
    default: []
  blocklist:
    description: Addresses or networks whose every packet is dropped.
    type: list
    elements: str
    default: []
  policy:
    description:
      - A TOML policy file B(on the managed host) (docs/policy.md); copy it
        there first with M(ansible.builtin.copy).
    type: path
  backend:
    description: The firewall autofw drives.
    type: str
    choices: [nft, iptables]
    default: nft
  timeout:
    description:
      - Seconds the new rules stay unconfirmed before the host rolls them
        back by itself. Must cover a new SSH login (the connection
        timeout) and the confirm task.
    type: int
    default: 60
  confirm:
    description:
      - With O(state=applied), confirm the new rules over a new SSH
        connection in the same task (the action plugin resets the
        connection first). V(false) leaves the window open for a later
        O(state=confirmed) task; returns RV(pending).
    type: bool
    default: true
  verify_rollback:
    description:
      - When the new login that should confirm the rules fails, wait for the
        host's deadline, log in again and report whether its watchdog
        restored the previous rules (the task fails either way). V(false)
        fails at once, saying when the rollback is due.
    type: bool
    default: true
  persist:
    description: Once confirmed, load the rules again at boot.
    type: bool
    default: false
  force:
    description:
      - Load the rules even when the lockout guard says they would not let
        the guarded connection in. The rollback still protects you if the
        new login then fails.
    type: bool
    default: false
  guard:
    description:
      - The connection the lockout guard checks, as C(CLIENT:PORT) seen from
        the managed host (V(192.0.2.2:22), V([2001:db8::2]:22)). Without
        it, autofw checks the SSH connection this task runs over itself.
    type: str
  fail_on_drift:
    description: With O(state=status), fail the task when drift is found.
    type: bool
    default: true
  binary:
    description:
      - The autofw binary on the managed host, a path or a name searched on
        C(PATH), C(/usr/local/sbin) and C(/usr/sbin). Installing it is up to
        you (a package, or M(ansible.builtin.copy)).
    type: str
    default: autofw
  state_dir:
    description:
      - Where autofw keeps the saved ruleset, the lock and the rollback
        window. Hosts that share one filesystem (containers, network
        namespaces) need one each.
    type: path
    default: /var/lib/autofw
  root:
    description:
      - Where O(persist) puts the boot files (under this directory instead
        of C(/)).
    type: path
    default: /
notes:
  - Run it as root (C(become=true) unless you log in as root).
  - ControlPersist caveat. Ansible reuses one SSH connection between tasks
    (ControlPersist). A confirm sent over that connection proves nothing, as
    the old connection is established and survives rules that drop every
    new one. The action plugin therefore resets the connection (as
    C(meta) V(reset_connection) does) before it confirms, so the confirm
    needs a fresh login. If you confirm in a separate task, put
    C(meta) V(reset_connection) right before it, as in the examples.
  - Keep O(timeout) longer than a failed login takes to fail (the
    connection timeout, V(10) s by default, times the retries) plus the
    confirm, or the rules roll back although they were fine.
  - A host whose new login failed rolls back by itself; the run fails with
    the host's name and the deadline. Nothing is persisted before a
    confirmation.
"""

EXAMPLES = r"""
- name: What listens, on every host
  autofw.firewall.autofw:
    state: facts

- name: Public listeners across the fleet
  ansible.builtin.debug:
    msg: "{{ ansible_facts.autofw.listeners | selectattr('exposure', 'eq', 'public') | map(attribute='port') | unique }}"

- name: Web servers serve http and https; confirmed over a new login
  autofw.firewall.autofw:
    state: applied
    allow: [http, https]
    limit: [ssh]
    timeout: 60
    persist: true

- name: The database only for the web servers
  autofw.firewall.autofw:
    state: applied
    source:
      - "postgresql={{ groups['web'] | map('extract', hostvars, 'ansible_host') | join(',') }}"

- name: Confirm in a task of its own
  block:
    - name: Load, leave the window open
      autofw.firewall.autofw:
        state: applied
        allow: [https]
        confirm: false
      register: fw
    - name: A fresh login, not the persisted connection
      ansible.builtin.meta: reset_connection
    - name: Keep the rules (only reachable if new logins work)
      autofw.firewall.autofw:
        state: confirmed
      when: fw.pending

- name: Drift report, without failing
  autofw.firewall.autofw:
    state: status
    fail_on_drift: false
  register: drift
"""

RETURN = r"""
ansible_facts:
  description: V(facts) - C(autofw) is the host's C(autofw scan --json)
    (listeners, unreadable_processes, host).
  returned: state is facts
  type: dict
  sample: {"autofw": {"listeners": [{"proto": "tcp", "address": "0.0.0.0", "port": 22,
           "exposure": "public", "service": "ssh", "process": "sshd", "pids": [630],
           "risky": false}], "unreadable_processes": 0,
           "host": {"ip_forward": false, "bridges": []}}}
outcome:
  description: V(applied) - C(dry-run) (check mode), C(unchanged),
    C(loaded) (window open), C(refused) (lockout guard).
  returned: state is applied
  type: str
  sample: loaded
pending:
  description: V(applied) - a rollback window is open and nothing has
    confirmed it yet (only with O(confirm=false), or a failed confirm).
  returned: state is applied
  type: bool
confirmed:
  description: V(applied) - the rules were confirmed over a new connection
    in this task.
  returned: state is applied and the rules changed
  type: bool
rolled_back:
  description: V(applied) - after a failed new login, whether the host was
    seen back on its previous rules after the deadline (null - not
    checked).
  returned: when the new login failed
  type: bool
before:
  description: V(applied) - autofw's part of the live firewall before,
    as the firewall lists it (empty when there was none).
  returned: state is applied and the task did not fail
  type: str
after:
  description: V(applied) - the same once the new rules are loaded.
  returned: state is applied and the task did not fail
  type: str
lockout:
  description: V(applied) - the lockout guard's verdict (C(admitted),
    C(locked-out), C(no-session)) and the connection it checked (C(source)
    says where it learnt it - C(SSH_CONNECTION), the sshd socket under
    become, or C(--guard) for O(guard)). When locked out, C(causes) lists
    what drops the connection, each with the change that removes it (in
    autofw's flags, which the module's options of the same name take), and
    C(fixed) whether those changes together let it in.
  returned: state is applied
  type: dict
  sample: {"verdict": "locked-out", "client": "192.0.2.2", "server": "192.0.2.1", "port": 22,
           "source": "SSH_CONNECTION", "causes": [{"cause": "`--source ssh=203.0.113.0/24`
           admits only 203.0.113.0/24 to tcp/22", "fix": "give `--source
           ssh=203.0.113.0/24,192.0.2.2` instead"}], "fixed": true}
opened:
  description: V(applied) - the ports the new rules accept new connections
    to (what C(autofw status) checks later).
  returned: state is applied
  type: list
  elements: dict
  sample: [{"proto": "tcp", "port": 22, "service": "ssh"}]
window:
  description: V(applied) - the rollback window that was opened (deadline
    in seconds since the epoch, watchdog pid, state directory).
  returned: when rules were loaded
  type: dict
connection:
  description: The SSH connection the module ran over, as the host saw it
    (C(SSH_CONNECTION)), to tell the apply's login from the confirm's.
  returned: when run over SSH
  type: str
  sample: 192.0.2.2 50312 192.0.2.1 22
drift:
  description: V(status) - whether drift was found.
  returned: state is status
  type: bool
findings:
  description: V(status) - the drift findings (kind, message, fix, ...).
  returned: state is status
  type: list
  elements: dict
status:
  description: V(status) - the whole C(autofw status --json) report.
  returned: state is status
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

# Exit codes of autofw (docs/design.md).
EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_REFUSED = 4


def find_binary(module):
    binary = module.params["binary"]
    if os.sep in binary:
        if not os.access(binary, os.X_OK):
            module.fail_json(msg="the autofw binary %s does not exist or is not executable; "
                                 "install it on the host (see docs/fleet.md) or set binary" % binary)
        return binary
    return module.get_bin_path(binary, required=True, opt_dirs=["/usr/local/sbin", "/usr/sbin", "/sbin"])


def run(module, argv):
    rc, out, err = module.run_command(argv, check_rc=False, environ_update={"LC_ALL": "C"})
    return rc, out, err.strip()


def fail(module, what, argv, rc, out, err, **extra):
    # autofw prints one `autofw: ...` line per error; it is the message.
    module.fail_json(msg="%s failed (exit %s): %s" % (what, rc, err or out.strip()),
                     cmd=argv, rc=rc, stdout=out, stderr=err, **extra)


def ssh_connection():
    return os.environ.get("SSH_CONNECTION")


def guard_of(module):
    """The connection the lockout guard checks when the play names one.
    Otherwise autofw checks this task's own login itself: the module's
    SSH_CONNECTION (inherited), or, under become where sudo drops it, the
    socket of the sshd the module descends from. Either way it knows the
    server address too, and names the connection for what it is."""
    return module.params["guard"]


# autofw's fixes name its flags; a play sets the module's options.
FLAG_OPTIONS = (("`--source ", "`source: "), ("`--block ", "`block: "),
                ("`--allow ", "`allow: "), ("`--blocklist ", "`blocklist: "))


def as_options(text):
    for flag, option in FLAG_OPTIONS:
        text = text.replace(flag, option)
    return text


def refusal(lockout, given):
    """The guard's refusal in one line: whose connection, what drops it
    (where it was given) and what lets it in; the details stay in the
    result's lockout."""
    to = "to %s port %s" % (lockout["server"], lockout["port"]) if lockout.get("server") \
        else "to port %s" % lockout["port"]
    if given:
        whose = "the connection given by guard, from %s %s" % (lockout["client"], to)
    else:
        whose = "the controller's SSH connection, from %s %s as the host sees it (%s)" % (
            lockout["client"], to, lockout["source"])
    causes = lockout.get("causes") or []
    why = "; ".join(as_options(c["cause"]) for c in causes)
    fixes = ", and ".join(as_options(c["fix"]) for c in causes)
    msg = ("refused before any change: the new rules would lock the controller out: "
           "%s would be dropped" % whose)
    if why:
        msg += ", because %s" % why
    if fixes and lockout.get("fixed"):
        msg += ". To get in: %s; or set force: true if you have another way in" % fixes
    else:
        msg += ". Set force: true only if you have another way in"
    return msg + ". Nothing was changed."


def choice_args(module):
    p = module.params
    argv = []
    for option, flag in (("allow", "--allow"), ("block", "--block"), ("limit", "--limit"),
                         ("source", "--source"), ("blocklist", "--blocklist")):
        for value in p[option]:
            argv += [flag, value]
    if p["policy"]:
        argv += ["--policy", p["policy"]]
    argv += ["--backend", p["backend"], "--state-dir", p["state_dir"]]
    return argv


def parse_json(module, what, argv, rc, out, err):
    try:
        return json.loads(out)
    except ValueError:
        fail(module, what, argv, rc, out, err)


def facts(module, binary):
    argv = [binary, "scan", "--json"]
    rc, out, err = run(module, argv)
    if rc != EXIT_OK:
        fail(module, "autofw scan", argv, rc, out, err)
    scan = parse_json(module, "autofw scan", argv, rc, out, err)
    module.exit_json(changed=False, ansible_facts={"autofw": scan})


def applied(module, binary):
    p = module.params
    argv = [binary, "apply", "--json"] + choice_args(module)
    guard = guard_of(module)
    if guard:
        argv += ["--guard", guard]
    if p["force"]:
        argv.append("--force")
    if not module.check_mode:
        argv += ["--confirm", "--no-wait", "--timeout", str(p["timeout"])]
        if p["persist"]:
            argv += ["--persist", "--root", p["root"]]
    rc, out, err = run(module, argv)
    # Errors other than the guard's refusal print no JSON: their message is
    # the failure.
    report = parse_json(module, "autofw apply", argv, rc, out, err)
    result = dict(
        changed=report["outcome"] == "loaded" or (module.check_mode and report["changed"]),
        outcome=report["outcome"],
        before=report["before"],
        after=report["after"],
        lockout=report["lockout"],
        opened=report["opened"],
        pending=report["outcome"] == "loaded",
        cmd=argv,
    )
    for warning in report["warnings"]:
        module.warn("autofw: %s" % warning)
    if ssh_connection():
        result["connection"] = ssh_connection()
    if report.get("window"):
        result["window"] = report["window"]
    if module._diff:
        result["diff"] = dict(before=report["before"], after=report["after"],
                              before_header="live autofw rules", after_header="new autofw rules")
    verdict = report["lockout"]["verdict"]
    if verdict == "locked-out" and not p["force"]:
        # One readable line; the rulesets stay out of a failure (a check-mode
        # run with --diff shows them).
        for key in ("pending", "before", "after", "diff"):
            result.pop(key, None)
        module.fail_json(msg=refusal(report["lockout"], bool(p["guard"])), **result)
    if rc != EXIT_OK:
        for key in ("before", "after", "diff"):
            result.pop(key, None)
        fail(module, "autofw apply", argv, rc, out, err, **result)
    module.exit_json(**result)


def confirmed(module, binary):
    argv = [binary, "confirm", "--state-dir", module.params["state_dir"]]
    extra = {}
    if ssh_connection():
        extra["connection"] = ssh_connection()
    if module.check_mode:
        module.exit_json(changed=False, msg="check mode: nothing confirmed", **extra)
    rc, out, err = run(module, argv)
    if rc == EXIT_OK:
        module.exit_json(changed=True, msg=out.strip(), **extra)
    if rc == EXIT_REFUSED and "already confirmed" in err:
        module.exit_json(changed=False, msg=err, **extra)
    if rc == EXIT_NEGATIVE:
        module.fail_json(msg="too late: the rollback window had closed, and the rules were "
                             "rolled back: %s" % err, rc=rc, **extra)
    fail(module, "autofw confirm", argv, rc, out, err, **extra)


def status(module, binary):
    argv = [binary, "status", "--json", "--state-dir", module.params["state_dir"]]
    rc, out, err = run(module, argv)
    if rc not in (EXIT_OK, EXIT_NEGATIVE):
        fail(module, "autofw status", argv, rc, out, err)
    report = parse_json(module, "autofw status", argv, rc, out, err)
    result = dict(changed=False, drift=report["drift"], findings=report["findings"], status=report)
    if report["drift"] and module.params["fail_on_drift"]:
        module.fail_json(
            msg="drift: " + "; ".join(f["message"] for f in report["findings"]), **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="applied",
                       choices=["facts", "applied", "confirmed", "status"]),
            allow=dict(type="list", elements="str", default=[]),
            block=dict(type="list", elements="str", default=[]),
            limit=dict(type="list", elements="str", default=[]),
            source=dict(type="list", elements="str", default=[]),
            blocklist=dict(type="list", elements="str", default=[]),
            policy=dict(type="path"),
            backend=dict(type="str", default="nft", choices=["nft", "iptables"]),
            timeout=dict(type="int", default=60),
            confirm=dict(type="bool", default=True),
            verify_rollback=dict(type="bool", default=True),
            persist=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            guard=dict(type="str"),
            fail_on_drift=dict(type="bool", default=True),
            binary=dict(type="str", default="autofw"),
            state_dir=dict(type="path", default="/var/lib/autofw"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    binary = find_binary(module)
    {
        "facts": facts,
        "applied": applied,
        "confirmed": confirmed,
        "status": status,
    }[module.params["state"]](module, binary)


if __name__ == "__main__":
    main()
