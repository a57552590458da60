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
            deadline = window.get("deadline")
            left = max(0, int(deadline - time.time())) if deadline else None
            result.update(
                failed=True,
                confirmed=False,
                msg="autofw loaded the new rules on %s, but a NEW SSH connection to it then failed "
                    "(%s): the rules would cut the controller off. Nothing was confirmed: the "
                    "host's watchdog restores the previous rules at %s (in %s s), by itself. "
                    "Fix the play (the SSH port must stay open to the controller) and run it "
                    "again." % (self._connection.get_option("host") if hasattr(self._connection, "get_option")
                                else self._play_context.remote_addr,
                                str(e).strip().splitlines()[-1] if str(e).strip() else e,
                                time.strftime("%H:%M:%S", time.localtime(deadline)) if deadline else "the deadline",
                                left if left is not None else "?"),
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
