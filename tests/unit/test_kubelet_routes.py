"""Kubelet paths -> host API pod subresource calls (syncer.kubelet.routes), and the
host error texts the tenant sees (syncer.kubelet.server.virtual_message)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from syncer.kubelet import routes
from syncer.kubelet.pods import HostPod
from syncer.kubelet.routes import Call, RouteError
from syncer.kubelet.server import _host_error, virtual_message

HOST_NS = "vcluster-vc"
HOST_POD = "web-1-x-demo-x-vc"


def target(method: str, path: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(routes.host_target(routes.parse(method, path), HOST_NS, HOST_POD))
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def test_logs_keep_every_log_option_and_name_the_container() -> None:
    path, query = target("GET", "/containerLogs/demo/web-1/nginx?follow=true&tailLines=5"
                         "&sinceSeconds=10&timestamps=true&previous=false&limitBytes=100"
                         "&sinceTime=2026-12-03T10%3A00%3A00Z")
    assert path == f"/api/v1/namespaces/{HOST_NS}/pods/{HOST_POD}/log"
    assert query == [("container", "nginx"), ("follow", "true"), ("tailLines", "5"),
                     ("sinceSeconds", "10"), ("timestamps", "true"), ("previous", "false"),
                     ("limitBytes", "100"), ("sinceTime", "2026-12-03T10:00:00Z")]


def test_logs_drop_what_the_api_does_not_define() -> None:
    """insecureSkipTLSVerifyBackend concerns kube-apiserver's own hop; unknown keys are
    not smuggled to the host; the kubelet's old ``tail`` becomes tailLines (all: none)."""
    _, query = target("GET", "/containerLogs/demo/web-1/nginx?insecureSkipTLSVerifyBackend="
                      "true&labelSelector=a&tail=3")
    assert query == [("container", "nginx"), ("tailLines", "3")]
    _, query = target("GET", "/containerLogs/demo/web-1/nginx?tail=all")
    assert query == [("container", "nginx")]


def test_exec_renames_stream_flags_and_keeps_the_command_in_order() -> None:
    path, query = target("POST", "/exec/demo/web-1/nginx?command=sh&command=-c&command=echo+hi"
                         "&input=1&output=1&error=1&tty=0")
    assert path.endswith(f"/pods/{HOST_POD}/exec")
    assert query == [("container", "nginx"), ("command", "sh"), ("command", "-c"),
                     ("command", "echo hi"), ("stdin", "true"), ("stdout", "true"),
                     ("stderr", "true"), ("tty", "false")]


def test_attach_has_no_command() -> None:
    path, query = target("POST", "/attach/demo/web-1/nginx?output=1&error=1&command=ls")
    assert path.endswith("/attach")
    assert query == [("container", "nginx"), ("stdout", "true"), ("stderr", "true")]


def test_port_forward_names_ports_and_no_container() -> None:
    path, query = target("POST", "/portForward/demo/web-1?port=80,8080")
    assert path.endswith("/portforward")
    assert query == [("ports", "80"), ("ports", "8080")]
    path, query = target("GET", "/portForward/demo/web-1")
    assert query == []


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/stats/summary", 404),
    ("GET", "/metrics/resource", 404),
    ("GET", "/pods", 404),
    ("GET", "/run/demo/web-1/nginx", 404),
    ("GET", "/", 404),
    ("POST", "/containerLogs/demo/web-1/nginx", 405),
    ("DELETE", "/exec/demo/web-1/nginx?command=ls", 405),
    ("GET", "/containerLogs/demo/web-1", 404),
    ("GET", "/containerLogs/demo/web-1/uid/nginx", 404),
    ("GET", "/containerLogs/Demo/web-1/nginx", 400),
    ("GET", "/containerLogs/demo/..%2F..%2Fetc/nginx", 400),
    ("GET", "/containerLogs/demo/web-1/nginx%0d%0aX-Evil:1", 400),
    ("POST", "/exec/demo/web-1/nginx?input=1", 400),
    ("POST", "/portForward/demo/web-1?port=0", 400),
    ("POST", "/portForward/demo/web-1?port=80;rm", 400),
])
def test_refusals(method: str, path: str, status: int) -> None:
    def route() -> None:
        routes.host_query(routes.parse(method, path))

    with pytest.raises(RouteError) as caught:
        route()
    assert caught.value.status == status


def test_node_paths_point_at_the_metrics_api() -> None:
    with pytest.raises(RouteError, match="kubectl top"):
        routes.parse("GET", "/stats/summary")


def test_parse_names_the_call() -> None:
    call = routes.parse("POST", "/portForward/demo/web-1.a?port=80")
    assert (call.call, call.namespace, call.pod, call.container) == (
        Call.PORT_FORWARD, "demo", "web-1.a", "")
    assert call.streaming
    assert not routes.parse("GET", "/containerLogs/demo/p/c").streaming


def test_host_messages_name_virtual_objects_only() -> None:
    call = routes.parse("GET", "/containerLogs/demo/web-1/nginx")
    pod = HostPod(HOST_NS, HOST_POD)
    text = virtual_message(f'previous terminated container "nginx" in pod "{HOST_POD}" not '
                           f'found; no logs in pod "{HOST_NS}/{HOST_POD}" ({HOST_NS})',
                           call, pod)
    assert text == ('previous terminated container "nginx" in pod "web-1" not found; '
                    'no logs in pod "demo/web-1" (demo)')
    assert HOST_NS not in text
    assert HOST_POD not in text


def test_host_authorization_failures_never_show_the_host_identity() -> None:
    call = routes.parse("POST", "/exec/demo/web-1/nginx?command=ls")
    status, text = _host_error(403, 'pods "x" is forbidden: User "system:serviceaccount:'
                                    f'{HOST_NS}:vc" cannot create resource "pods/exec"',
                               call, HostPod(HOST_NS, HOST_POD))
    assert status == 502
    assert "system:serviceaccount" not in text
    assert HOST_NS not in text
    assert _host_error(418, "teapot", call, HostPod(HOST_NS, HOST_POD))[0] == 502
    assert _host_error(404, "gone", call, HostPod(HOST_NS, HOST_POD))[0] == 404
