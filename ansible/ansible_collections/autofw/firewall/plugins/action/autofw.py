# -*- coding: utf-8 -*-
# Copyright: autofw developers
# MIT OR Apache-2.0
"""Action plugin for autofw.firewall.autofw: commit-confirm over a new SSH
connection.

The module loads the rules and arms the host's rollback watchdog
(``autofw apply --confirm --no-wait``). A confirm sent over the same,
persisted SSH connection (ControlPersist) would prove nothing: an
established connection survives rules that drop every new one. So this
plugin resets the connection, as ``meta: reset_connection`` does, and runs
``autofw confirm`` over a fresh login. If that login fails, nothing is
confirmed, the watchdog rolls the rules back at the deadline, and the task
fails saying so.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        applied = self._execute_module(module_name=self._task.action, module_args=args,
                                       task_vars=task_vars)
        result.update(applied)
        wants_confirm = boolean(args.get("confirm", True), strict=False)
        if (args.get("state", "applied") != "applied" or not wants_confirm
                or applied.get("failed") or not applied.get("pending")):
            return result

        # A fresh login: stop the ControlPersist master so the next command
        # needs a new TCP connection through the new rules.
        self._connection.reset()
        confirm_args = {"state": "confirmed"}
        for key in ("binary", "state_dir"):
            if key in args:
                confirm_args[key] = args[key]
        window = applied.get("window") or {}
        try:
            confirmed = self._execute_module(module_name=self._task.action,
                                             module_args=confirm_args, task_vars=task_vars)
        except AnsibleConnectionFailure as e:
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            if boolean(args.get("verify_rollback", True), strict=False):
                rolled_back, outcome = self._after_deadline(confirm_args, window, task_vars)
            else:
                rolled_back, outcome = None, self._due(window)
            result.update(
                failed=True,
                confirmed=False,
                pending=False,
                rolled_back=rolled_back,
                msg="autofw loaded the new rules on %s, but a NEW SSH connection to it then "
                    "failed (%s): the rules would cut the controller off, so nothing was "
                    "confirmed. %s" % (self._host_name(), reason, outcome),
            )
            return result
        result["confirm_connection"] = confirmed.get("connection")
        if confirmed.get("failed"):
            result.update(failed=True, confirmed=False,
                          msg="autofw loaded the new rules, but confirming them over a new "
                              "connection failed: %s" % confirmed.get("msg"))
            return result
        result.update(confirmed=True, pending=False,
                      msg="rules loaded and confirmed over a new SSH connection")
        return result

    def _host_name(self):
        try:
            return self._connection.get_option("host")
        except Exception:
            return self._play_context.remote_addr

    @staticmethod
    def _due(window):
        deadline = window.get("deadline")
        if not deadline:
            return "The host's watchdog restores the previous rules at the deadline, by itself."
        return ("The host's watchdog restores the previous rules at %s (in %d s), by itself."
                % (time.strftime("%H:%M:%S", time.localtime(deadline)),
                   max(0, int(deadline - time.time()))))

    def _after_deadline(self, module_args, window, task_vars):
        """Wait for the host's deadline, then look again over a new login:
        did its watchdog restore the previous rules? Returns (rolled back or
        None when unknown, what to tell the operator)."""
        deadline = window.get("deadline")
        if not deadline:
            return None, self._due(window)
        at = time.strftime("%H:%M:%S", time.localtime(deadline))
        # The watchdog acts within 100 ms of the deadline; give it a margin.
        time.sleep(max(0.0, deadline - time.time() + 2))
        self._connection.reset()
        status_args = dict(module_args, state="status", fail_on_drift=False)
        try:
            status = self._execute_module(module_name=self._task.action,
                                          module_args=status_args, task_vars=task_vars)
        except AnsibleConnectionFailure:
            return False, ("At the deadline (%s) its watchdog should have restored the previous "
                           "rules, but the host is still unreachable: recover it from its console "
                           "(`autofw rollback`; docs/fleet.md)." % at)
        rules = (status.get("status") or {}).get("rules") or {}
        if rules.get("state") == "rolled-back":
            return True, ("Its watchdog restored the previous rules at the deadline (%s), checked "
                          "over a new login. Fix the play (the SSH port must stay open to the "
                          "controller) and run it again." % at)
        return False, ("After the deadline (%s) autofw on the host reports its rules as %r, not "
                       "rolled back: look at `autofw status` there." % (at, rules.get("state")))
