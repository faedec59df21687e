#!/usr/bin/python3
"""Drive aioxmpp (python3-aioxmpp, a client nobody here wrote) and its built-in XEP-0198 support against Vigil.

    /usr/bin/python3 aioxmpp_sm_client.py --jid a@localhost/r --password pw --port 5222 '[{"do": ...}, ...]'

Connects over STARTTLS (certificate not verified: the test one is self-signed) with SCRAM; aioxmpp enables
stream management by itself when the server offers it. Actions, in order once the stream is established:

    {"do": "send", "to": JID, "body": TEXT}        enqueue a chat; its token is tracked
    {"do": "wait_acked", "timeout": S}             until every tracked token is ACKED (the server's <a/>)
    {"do": "wait_messages", "count": N}            until N chats with a body arrived
    {"do": "sleep", "seconds": S}
    {"do": "drop"}                                 shut the TCP socket down under aioxmpp, no stream close;
                                                   aioxmpp notices, suspends, and reconnects on its own, but
                                                   its reconnection waits for a line on stdin
    {"do": "wait_resumed", "timeout": S}           until aioxmpp says the stream was resumed

Events, one JSON line each: established (jid, sm_enabled, sm_id, sm_resumable), message, sent, acked,
suspended, reconnecting, resumed, destroyed, timeout, error, done. Exit 0 done, 3 timeout, 5 other error.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import time

try:
    import aioxmpp
    import aioxmpp.connector
    import aioxmpp.dispatcher
    import aioxmpp.node
    from aioxmpp.stream import StanzaState
except ImportError as e:  # pragma: no cover - reported to the test as a clear failure
    print(json.dumps({'event': 'error', 'error': f'aioxmpp is not importable ({e}): apt-get install python3-aioxmpp'}), flush=True)
    sys.exit(6)


def emit(event, **fields):
    sys.stdout.write(json.dumps({'event': event, **fields, 't': round(time.time(), 3)}) + '\n')
    sys.stdout.flush()


def finish(code):
    sys.stdout.flush()
    os._exit(code)


async def until(predicate, changed, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            emit('timeout', waiting_for=what, seconds=timeout)
            finish(3)
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(left, 0.2))
        except asyncio.TimeoutError:
            pass


async def run(args, actions):
    loop = asyncio.get_event_loop()
    changed = asyncio.Event()
    go = asyncio.Event()
    state = {'resumed': 0, 'suspended': 0, 'connects': 0}

    # aioxmpp reconnects by itself after a lost connection; the test decides when it may.
    real_connect = aioxmpp.node.connect_xmlstream

    async def gated_connect(*a, **kw):
        state['connects'] += 1
        if state['connects'] > 1:
            emit('reconnecting')
            await go.wait()
        return await real_connect(*a, **kw)

    aioxmpp.node.connect_xmlstream = gated_connect

    async def read_stdin():
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            go.set()

    asyncio.ensure_future(read_stdin())

    client = aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(args.jid),
        aioxmpp.make_security_layer(args.password, no_verify=True),
        override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())],
    )
    client.backoff_start = __import__('datetime').timedelta(milliseconds=50)
    messages = []
    tokens = []

    def on_message(msg):
        body = msg.body.any() if msg.body else None
        emit('message', **{'from': str(msg.from_), 'body': body})
        if body:
            messages.append(body)
        changed.set()

    client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher).register_callback(aioxmpp.MessageType.CHAT, None, on_message)

    def signal(name, **extra):
        def handler(*a):
            if name == 'resumed':
                state['resumed'] += 1
            emit(name, **extra, args=[str(x) for x in a])
            changed.set()
        return handler

    client.on_stream_suspended.connect(signal('suspended'))
    client.on_stream_resumed.connect(signal('resumed'))
    client.on_stream_destroyed.connect(signal('destroyed'))
    client.on_failure.connect(signal('failure'))

    established = asyncio.Event()
    client.on_stream_established.connect(lambda: (established.set(), changed.set()))
    client.presence = aioxmpp.PresenceState(True)
    await until(established.is_set, changed, args.wait, 'established')
    stream = client.stream
    emit('established', jid=str(client.local_jid), sm_enabled=stream.sm_enabled, sm_id=stream.sm_id, sm_resumable=stream.sm_resumable)

    for i, action in enumerate(actions):
        do = action['do']
        timeout = float(action.get('timeout', args.wait))
        what = f'#{i} {do}'
        if do == 'send':
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=aioxmpp.JID.fromstr(action['to']))
            msg.body[None] = action['body']
            tokens.append([client.enqueue(msg), action['body'], False])
            emit('sent', to=action['to'], body=action['body'])
        elif do == 'wait_acked':
            def all_acked():
                for t in tokens:
                    if t[0].state == StanzaState.ACKED and not t[2]:
                        t[2] = True
                        emit('acked', body=t[1])
                return all(t[0].state == StanzaState.ACKED for t in tokens)
            await until(all_acked, changed, timeout, what)
            emit('sm_counters', inbound=stream.sm_inbound_ctr, unacked=len(stream.sm_unacked_list))
        elif do == 'wait_messages':
            count = int(action.get('count', 1))
            await until(lambda: len(messages) >= count, changed, timeout, f'{what} ({count} messages)')
        elif do == 'sleep':
            await asyncio.sleep(float(action.get('seconds', 1)))
        elif do == 'drop':
            # The connection dies under aioxmpp: shut down at the socket level (no TLS close_notify, no
            # </stream:stream>), so both ends read end-of-file, as when a NAT or a network switch kills it.
            sock = stream._xmlstream._transport.get_extra_info('socket')
            sock.shutdown(socket.SHUT_RDWR)
            emit('dropped')
            await until(lambda: state['connects'] > 1, changed, timeout, 'reconnect attempt')
        elif do == 'wait_resumed':
            await until(lambda: state['resumed'] > 0, changed, timeout, what)
            emit('sm_counters', inbound=stream.sm_inbound_ctr, unacked=len(stream.sm_unacked_list), sm_id=stream.sm_id)
        else:
            emit('error', error=f'unknown action {do!r}')
            finish(5)

    stopped = asyncio.Event()
    client.on_stopped.connect(lambda: stopped.set())
    client.presence = aioxmpp.PresenceState(False)
    await until(lambda: not client.running, changed, args.wait, 'stop')
    emit('done')
    finish(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jid', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--wait', type=float, default=8.0)
    parser.add_argument('actions')
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(lambda _l, ctx: emit('error', error=str(ctx.get('exception') or ctx.get('message'))))
    try:
        loop.run_until_complete(run(args, json.loads(args.actions)))
    except Exception as e:  # noqa: BLE001
        emit('error', error=f'{type(e).__name__}: {e}')
        finish(5)
    finish(0)


if __name__ == '__main__':
    main()
