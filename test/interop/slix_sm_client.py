#!/usr/bin/python3
"""Drive slixmpp's XEP-0198 (stream management) and XEP-0280 (carbons) plugins against a Vigil under test.

Built on slix_client.py (same options, same JSON-lines events, same SCRAM-over-STARTTLS login; see there),
with the plugins xep_0198 and xep_0280 loaded and these actions instead:

    {"do": "send", "to": JID, "body": TEXT, "type": "chat"}   send a message
    {"do": "wait_messages", "count": N, "timeout": S}         until N messages with a body (not carbons) arrived
    {"do": "wait_carbons", "count": N, "timeout": S}          until N carbons (received or sent) arrived
    {"do": "enable_carbons", "timeout": S}                    iq set <enable xmlns='urn:xmpp:carbons:2'/>
    {"do": "wait_sm", "timeout": S}                           until <enabled/> (or <failed/>) came back
    {"do": "request_ack"}                                     send <r/> now
    {"do": "wait_acked", "body": TEXT, "timeout": S}          until the server acked our message with that body,
                                                              sending <r/> every half second meanwhile
    {"do": "wait_line", "timeout": S}                         until the test writes a line to our stdin
    {"do": "drop"}                                            the network goes: the TCP socket is reset
                                                              (SO_LINGER 0) with no </stream:stream>
    {"do": "reconnect", "timeout": S}                         connect again; slixmpp resumes if it can; until
                                                              session_resumed, or a new session, or sm_failed
    {"do": "sleep", "seconds": S}
    {"do": "disconnect", "timeout": S}                        close the stream cleanly

Events besides slix_client's: sm_enabled (id, resume, max), sm_failed (condition), sm_wire (dir in/out, what:
r or a, h) for every <r/> and <a/> on the wire, acked (body of one of our stanzas the server acked),
session_resumed (h), carbon (direction, from, to, body of the forwarded message), carbons_enabled, line,
dropped, reconnecting. Exit status as slix_client.py.
"""

import asyncio
import json
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slix_client import (EXIT_CONNECTION, EXIT_ERROR, EXIT_OK, EXIT_TIMEOUT, Driver, StreamLog,  # noqa: E402
                         emit, finish)

from slixmpp.exceptions import IqError, IqTimeout  # noqa: E402

ACTIONS = {'send', 'wait_messages', 'wait_carbons', 'enable_carbons', 'wait_sm', 'request_ack', 'wait_acked',
           'wait_line', 'drop', 'reconnect', 'sleep', 'disconnect'}


class SmStreamLog(StreamLog):
    """Also reports every XEP-0198 <r/> and <a/> slixmpp sent or received."""

    NONZA = re.compile(r"^<(r|a)\b[^>]*xmlns=[\"']urn:xmpp:sm:3[\"'][^>]*>")
    H = re.compile(r"\bh=[\"'](\d+)[\"']")

    def emit(self, record):
        super().emit(record)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001
            return
        for prefix, direction in (('SEND: ', 'out'), ('RECV: ', 'in')):
            if text.startswith(prefix):
                m = self.NONZA.match(text[len(prefix):].strip())
                if m:
                    h = self.H.search(m.group(0))
                    emit('sm_wire', dir=direction, what=m.group(1), h=int(h.group(1)) if h else None)


class SmDriver(Driver):
    def __init__(self, args, stream_log):
        super().__init__(args, stream_log)
        self.register_plugin('xep_0198')
        self.register_plugin('xep_0280')
        self.sm_state = None  # 'enabled' or 'failed'
        self.acked = 0
        self.acked_bodies = []
        self.carbons = []
        self.resumed = 0
        self.new_sessions = 0
        self.add_event_handler('sm_enabled', self.on_sm_enabled)
        self.add_event_handler('sm_failed', self.on_sm_failed)
        self.add_event_handler('stanza_acked', self.on_acked)
        self.add_event_handler('session_resumed', self.on_resumed)
        self.add_event_handler('carbon_received', lambda msg: self.on_carbon('received', msg))
        self.add_event_handler('carbon_sent', lambda msg: self.on_carbon('sent', msg))

    async def on_session_start(self, event):
        self.new_sessions += 1
        await super().on_session_start(event)

    def on_sm_enabled(self, el):
        self.sm_state = 'enabled'
        emit('sm_enabled', id=el.xml.get('id'), resume=el.xml.get('resume'), max=el.xml.get('max'))
        self.poke()

    def on_sm_failed(self, el):
        self.sm_state = 'failed'
        cond = next((c.tag.split('}')[-1] for c in el.xml if not c.tag.endswith('}text')), None)
        emit('sm_failed', condition=cond, h=el.xml.get('h'))
        self.poke()

    def on_acked(self, stanza):
        self.acked += 1
        if stanza.name == 'message':
            self.acked_bodies.append(stanza['body'])
        emit('acked', name=stanza.name, body=stanza['body'] if stanza.name == 'message' else None)
        self.poke()

    def on_resumed(self, el):
        self.resumed += 1
        self.is_disconnected = False
        self.gone.clear()
        emit('session_resumed', h=el.xml.get('h'), previd=el.xml.get('previd'))
        self.poke()

    def on_carbon(self, direction, msg):
        inner = msg['carbon_' + direction]
        record = {'direction': direction, 'wrapper_from': str(msg['from']), 'from': str(inner['from']),
                  'to': str(inner['to']), 'body': inner['body'], 'type': inner['type']}
        emit('carbon', **record)
        self.carbons.append(record)
        self.poke()

    def on_message(self, msg):
        if msg.xml.find('{urn:xmpp:carbons:2}received') is not None or msg.xml.find('{urn:xmpp:carbons:2}sent') is not None:
            return  # the carbon handlers report these
        super().on_message(msg)


async def wait_for(xmpp, predicate, timeout, what, while_down=False):
    """Like slix_client's wait_until, but a lost connection only ends the wait when while_down is False."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if xmpp.is_disconnected and not while_down:
            emit('timeout', waiting_for=what, reason='disconnected while waiting')
            finish(EXIT_CONNECTION)
        left = deadline - time.monotonic()
        if left <= 0:
            emit('timeout', waiting_for=what, seconds=timeout)
            finish(EXIT_TIMEOUT)
        xmpp.changed.clear()
        try:
            await asyncio.wait_for(xmpp.changed.wait(), min(left, 0.2))
        except asyncio.TimeoutError:
            pass


async def run(xmpp, args, actions):
    await wait_for(xmpp, xmpp.session_started.is_set, args.wait, 'session_start')
    if not args.no_roster:
        try:
            await xmpp.get_roster(timeout=args.wait)
        except (IqError, IqTimeout):
            emit('roster', error='failed')
    if not args.no_presence:
        xmpp.send_presence()
    emit('ready', jid=str(xmpp.boundjid))
    loop = asyncio.get_event_loop()

    for i, action in enumerate(actions):
        do = action.get('do')
        timeout = float(action.get('timeout', args.wait))
        what = f'#{i} {do}'
        if do == 'send':
            xmpp.send_message(mto=action['to'], mbody=action.get('body'), mtype=action.get('type', 'chat'))
            emit('sent', to=action['to'], body=action.get('body'))
        elif do == 'wait_messages':
            count = int(action.get('count', 1))
            await wait_for(xmpp, lambda: len(xmpp.messages) >= count, timeout, f'{what} ({count} messages)')
        elif do == 'wait_carbons':
            count = int(action.get('count', 1))
            await wait_for(xmpp, lambda: len(xmpp.carbons) >= count, timeout, f'{what} ({count} carbons)')
        elif do == 'enable_carbons':
            try:
                await xmpp['xep_0280'].enable(timeout=timeout)
                emit('carbons_enabled')
            except IqError as e:
                emit('carbons_failed', error=e.iq['error']['condition'])
            except IqTimeout:
                emit('carbons_failed', error='timeout')
        elif do == 'wait_sm':
            await wait_for(xmpp, lambda: xmpp.sm_state is not None, timeout, what)
        elif do == 'request_ack':
            xmpp['xep_0198'].request_ack()
        elif do == 'wait_acked':
            # slixmpp writes <r/> at once but queues stanzas, so an <r/> may overtake what it asks about: ask
            # again every half second until the server's <a/> covers our stanza with that body.
            body = action['body']
            deadline = time.monotonic() + timeout
            while body not in xmpp.acked_bodies:
                if xmpp.is_disconnected or time.monotonic() > deadline:
                    emit('timeout', waiting_for=f'{what} ({body!r} acked)', seconds=timeout)
                    finish(EXIT_TIMEOUT)
                xmpp['xep_0198'].request_ack()
                await asyncio.sleep(0.5)
        elif do == 'wait_line':
            line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout)
            emit('line', line=line.strip())
        elif do == 'drop':
            sock = xmpp.transport.get_extra_info('socket')  # the TCP socket under TLS
            if sock is not None:
                # RST instead of FIN: nothing more goes out, not even what slixmpp still has buffered.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            xmpp.transport.abort()
            emit('dropped')
            await wait_for(xmpp, xmpp.gone.is_set, timeout, 'dropped', while_down=True)
        elif do == 'reconnect':
            resumed, sessions, failed = xmpp.resumed, xmpp.new_sessions, xmpp.sm_state
            xmpp.sm_state = None
            emit('reconnecting')
            xmpp.connect((args.host, args.port))
            await wait_for(xmpp, lambda: xmpp.resumed > resumed or xmpp.new_sessions > sessions or xmpp.sm_state == 'failed',
                           timeout, what, while_down=True)
            if xmpp.sm_state is None and xmpp.resumed > resumed:
                xmpp.sm_state = failed
        elif do == 'sleep':
            await asyncio.sleep(float(action.get('seconds', 1)))
        elif do == 'disconnect':
            xmpp.disconnect(wait=min(timeout, 5))
            await wait_for(xmpp, xmpp.gone.is_set, timeout, 'disconnect', while_down=True)
        else:
            emit('error', error=f'unknown action {do!r}')
            finish(EXIT_ERROR)

    if not xmpp.is_disconnected:
        xmpp.disconnect(wait=2)
        await wait_for(xmpp, xmpp.gone.is_set, args.wait, 'disconnect', while_down=True)
    emit('done')
    finish(EXIT_OK)


def main():
    import argparse
    import logging

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jid', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--wait', type=float, default=10.0)
    parser.add_argument('--no-roster', action='store_true')
    parser.add_argument('--no-presence', action='store_true')
    parser.add_argument('--verbose', action='store_true')
    parser.add_argument('actions')
    args = parser.parse_args()
    try:
        actions = json.loads(args.actions)
        if not isinstance(actions, list) or not all(isinstance(a, dict) and a.get('do') in ACTIONS for a in actions):
            raise ValueError(f'actions must be a JSON list of objects with "do" one of {sorted(ACTIONS)}')
    except ValueError as e:
        emit('error', error=f'bad actions: {e}')
        finish(EXIT_ERROR)

    stream_log = SmStreamLog(args.verbose)
    root = logging.getLogger('slixmpp')
    root.setLevel(logging.DEBUG)
    root.addHandler(stream_log)
    root.propagate = False

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(lambda _l, ctx: emit('error', error=str(ctx.get('exception') or ctx.get('message'))))
    xmpp = SmDriver(args, stream_log)
    xmpp.loop = loop
    xmpp.connect((args.host, args.port))
    try:
        loop.run_until_complete(run(xmpp, args, actions))
    except Exception as e:  # noqa: BLE001
        emit('error', error=f'{type(e).__name__}: {e}')
        finish(EXIT_ERROR)
    finish(EXIT_OK)


if __name__ == '__main__':
    main()
