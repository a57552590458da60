# -*- coding: utf-8 -*-
"""Test-only stdout callback: the whole run as one JSON object, in the shape
of ansible.posix's `json` callback (plays -> tasks -> hosts, then stats),
which ansible-core does not ship. tests/fleet.rs reads it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: results_json
type: stdout
short_description: the run as one JSON object (tests only)
description: Every task's result per host, then the per-host stats.
"""

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "results_json"

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def _record(self, result, **extra):
        outcome = dict(self._convert_data(result._result))
        outcome.update(extra)
        self.plays[-1]["tasks"][-1]["hosts"][result._host.get_name()] = outcome

    def _convert_data(self, data):
        # Results may hold Ansible's own str and dict subclasses: plain JSON.
        return json.loads(json.dumps(data, default=str))

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {h: stats.summarize(h) for h in sorted(stats.processed.keys())}
        print(json.dumps({"plays": self.plays, "stats": summary}, indent=2, sort_keys=True))
