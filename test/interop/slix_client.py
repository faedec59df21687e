#!/usr/bin/python3
"""Drive slixmpp (a client nobody here wrote) against a Vigil under test.

Run with the Debian interpreter that has python3-slixmpp: /usr/bin/python3.

    /usr/bin/python3 slix_client.py --jid alice@localhost/desk --password pw --port 5222 \
        '[{"do": "send", "to": "bob@localhost", "body": "hi"}, {"do": "disconnect"}]'

The actions are a JSON list, given as the last argument or, when that is absent, on stdin. They run
in order once the session has started (after the roster fetch and initial presence, unless turned off):

    {"do": "send", "to": JID, "body": TEXT, "type": "chat"}       send a message
    {"do": "wait_messages", "count": N, "timeout": S}             until N messages with a body arrived in all
    {"do": "wait_presence", "from": JID, "type": "available", "timeout": S}
                                                                  until such a presence arrived (bare JID
                                                                  matches any resource; counts earlier ones)
    {"do": "presence", "to": JID?, "type": TYPE?}                 send a presence (initial when no to/type)
    {"do": "get_roster", "full": false, "timeout": S}             fetch the roster, print it; versioned
                                                                  (XEP-0237: an unchanged one comes back
                                                                  empty) unless full asks for all of it
    {"do": "add_contact", "jid": JID, "until": ["to", "both"], "timeout": S}
                                                                  roster add + subscribe, until our roster
                                                                  item for JID has one of those states
    {"do": "wait_subscription", "jid": JID, "until": ["both"], "timeout": S}
    {"do": "sleep", "seconds": S}                                 stay connected
    {"do": "disconnect", "timeout": S}                            close the stream cleanly, wait for the end
    {"do": "wait_disconnect", "timeout": S}                       until the server ends the stream
    {"do": "die"}                                                 SIGKILL ourselves: no closing stanza
    {"do": "freeze", "seconds": S}                                block the event loop with the socket open
                                                                  (a hung client), then SIGKILL ourselves

Only SCRAM is allowed (slixmpp picks the strongest the server offers); STARTTLS is required and the
certificate is not verified (the test one is self-signed). Incoming subscription requests are accepted
and answered with a subscription back (slixmpp's auto_authorize and auto_subscribe, set explicitly). Pings
(XEP-0199) are answered, as the xep_0199 plugin does, except while frozen; each answered one is a 'pinged'
event.

Every wait is bounded (default --wait seconds, 10). Each event is one JSON line on stdout, with 't' the
wall clock in seconds: session_start (bound JID, the SASL mechanism seen in the stream log, tls), ready
(roster fetched, initial presence sent), sent, message (from, body, delay + stamp when it carries a
{urn:xmpp:delay}delay), message_error, presence (from, type), pinged (from, id), roster (items, ver;
unchanged when the answer is empty), roster_push, roster_set_failed, subscription, subscribed, failed_auth,
failed_all_auth, stream_error, connection_failed, timeout, dying, freezing, disconnected, error, done. The stream log goes to stderr with --verbose.

Exit status: 0 done, 2 authentication failed, 3 a wait timed out, 4 connection lost or failed,
5 bad actions or other error. A missing slixmpp exits 6 saying which package to install.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import ssl
import sys
import time

try:
    import slixmpp
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import StanzaPath
except ImportError:  # pragma: no cover - reported to the test as a clear failure
    print(json.dumps({'event': 'error', 'error': 'slixmpp is not installed: apt-get install python3-slixmpp'}), flush=True)
    sys.exit(6)

ACTIONS = {'send', 'wait_messages', 'wait_presence', 'presence', 'get_roster', 'add_contact', 'wait_subscription',
           'sleep', 'disconnect', 'wait_disconnect', 'die', 'freeze'}
EXIT_OK, EXIT_AUTH, EXIT_TIMEOUT, EXIT_CONNECTION, EXIT_ERROR = 0, 2, 3, 4, 5
SCRAM_MECHS = ['SCRAM-SHA-256', 'SCRAM-SHA-1']
DELAY = '{urn:xmpp:delay}delay'


def emit(event, **fields):
    fields = {'event': event, **fields, 't': round(time.time(), 3)}
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def finish(code):
    """Leave now: flush what we printed, and don't let pending slixmpp tasks keep us alive."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class StreamLog(logging.Handler):
    """Reads slixmpp's own stream log ("SEND: ..."): the <auth/> it sent names the mechanism really used."""

    AUTH = re.compile(r"<auth\b[^>]*\bmechanism=[\"']([A-Z0-9-]+)[\"']")

    def __init__(self, echo):
        super().__init__(logging.DEBUG)
        self.echo = echo
        self.mechanisms = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a log line we cannot format is not ours to judge
            return
        if text.startswith('SEND:'):
            m = self.AUTH.search(text)
            if m:
                self.mechanisms.append(m.group(1))
        if self.echo:
            sys.stderr.write(text + '\n')


class Driver(slixmpp.ClientXMPP):
    def __init__(self, args, stream_log):
        super().__init__(args.jid, args.password)
        self.args = args
        self.stream_log = stream_log
        # Only SCRAM: slixmpp then picks the strongest of these the server offers.
        self['feature_mechanisms'].use_mechs = set(SCRAM_MECHS)
        self['feature_mechanisms'].unencrypted_plain = False
        # XEP-0199: answer the server's pings (the watchdog's probes) with a result, as a live client does.
        # No keepalive of our own: we must not send anything a probe did not ask for.
        self.register_plugin('xep_0199', {'keepalive': False})
        self.register_handler(Callback('PingSeen', StanzaPath('iq@type=get/ping'), self.on_ping))
        # Subscription requests are approved and answered with one back (slixmpp's defaults, said out loud).
        self.auto_authorize = True
        self.auto_subscribe = True
        # The test certificate is self-signed.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.messages = []
        self.presences = []
        self.session_started = asyncio.Event()
        self.auth_failed = False
        self.is_disconnected = False
        self.gone = asyncio.Event()
        self.changed = asyncio.Event()
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('presence', self.on_presence)
        self.add_event_handler('roster_update', self.on_roster_update)
        self.add_event_handler('changed_subscription', self.on_changed_subscription)
        self.add_event_handler('failed_auth', self.on_failed_auth)
        self.add_event_handler('failed_all_auth', self.on_failed_all_auth)
        self.add_event_handler('connection_failed', self.on_connection_failed)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('stream_error', self.on_stream_error)

    def mechanism(self):
        seen = self.stream_log.mechanisms
        return seen[-1] if seen else None

    def poke(self):
        self.changed.set()

    async def on_session_start(self, _event):
        plugin_mech = getattr(self['feature_mechanisms'].mech, 'name', None)
        emit('session_start', jid=str(self.boundjid), mechanism=self.mechanism(), plugin_mechanism=plugin_mech,
             mechanisms_sent=self.stream_log.mechanisms, tls=self.is_tls())
        self.session_started.set()
        self.poke()

    def is_tls(self):
        return self.transport is not None and self.transport.get_extra_info('sslcontext') is not None

    def on_message(self, msg):
        xml = msg.xml
        mtype = xml.get('type', 'normal')
        if mtype == 'error':
            emit('message_error', **{'from': str(msg['from']), 'condition': msg['error']['condition']})
            return
        body = msg['body']
        delay = xml.find(DELAY)
        record = {'from': str(msg['from']), 'to': str(msg['to']), 'type': mtype, 'body': body,
                  'id': xml.get('id'), 'delay': delay is not None,
                  'stamp': delay.get('stamp') if delay is not None else None}
        emit('message', **record)
        if body:
            self.messages.append(record)
        self.poke()

    def on_ping(self, iq):
        # The xep_0199 plugin sends the result; this only reports the ping.
        emit('pinged', **{'from': str(iq['from']), 'id': iq['id']})

    def on_presence(self, pres):
        xml = pres.xml
        record = {'from': str(pres['from']), 'type': xml.get('type', 'available'), 'show': pres['show'] or None,
                  'status': pres['status'] or None}
        emit('presence', **record)
        self.presences.append(record)
        self.poke()

    def on_roster_update(self, iq):
        if iq['type'] not in ('result', 'set'):
            return  # get_roster's callback sees errors too; fetch_roster reports those
        query = iq.xml.find('{jabber:iq:roster}query')
        if query is None:  # XEP-0237: the roster did not change since the version we sent
            emit('roster', items=None, unchanged=True)
            self.poke()
            return
        items = [{'jid': str(jid), 'subscription': item['subscription'], 'ask': item['ask'] or None}
                 for jid, item in iq['roster']['items'].items()]
        emit('roster_push' if iq['type'] == 'set' else 'roster', items=items, ver=query.get('ver'))
        self.poke()

    def on_changed_subscription(self, pres):
        emit('subscription', **{'from': str(pres['from']), 'type': pres.xml.get('type')})
        self.poke()

    def on_failed_auth(self, failure):
        self.auth_failed = True
        emit('failed_auth', mechanism=self.mechanism(), condition=failure['condition'] or None)

    def on_failed_all_auth(self, _event):
        emit('failed_all_auth', mechanisms_sent=self.stream_log.mechanisms)
        finish(EXIT_AUTH)

    def on_connection_failed(self, error):
        emit('connection_failed', error=str(error))
        finish(EXIT_CONNECTION)

    def on_stream_error(self, error):
        emit('stream_error', condition=error['condition'] or None, text=error['text'] or None)

    def on_disconnected(self, reason):
        self.is_disconnected = True
        emit('disconnected', reason=str(reason) if reason else None)
        self.gone.set()
        self.poke()

    def roster_state(self, jid):
        bare = slixmpp.JID(jid).bare
        if bare not in self.client_roster:
            return None
        return self.client_roster[bare]['subscription']


def matches(jid, wanted):
    """A bare JID wanted matches any of its resources; a full JID only itself."""
    if wanted is None:
        return True
    return jid == wanted or ('/' not in wanted and jid.split('/', 1)[0] == wanted)


async def wait_until(xmpp, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if xmpp.is_disconnected and what != 'disconnect':
            emit('timeout', waiting_for=what, reason='disconnected while waiting')
            finish(EXIT_AUTH if xmpp.auth_failed and not xmpp.session_started.is_set() else EXIT_CONNECTION)
        left = deadline - time.monotonic()
        if left <= 0:
            emit('timeout', waiting_for=what, seconds=timeout)
            finish(EXIT_TIMEOUT)
        xmpp.changed.clear()
        try:
            await asyncio.wait_for(xmpp.changed.wait(), min(left, 0.2))
        except asyncio.TimeoutError:
            pass


async def fetch_roster(xmpp, timeout, full=False):
    if full:
        xmpp.client_roster.version = ''  # 'no cached roster': the server must send all of it
    try:
        await xmpp.get_roster(timeout=timeout)
        return True
    except IqError as e:
        emit('roster', error=e.iq['error']['condition'])
    except IqTimeout:
        emit('roster', error='timeout')
    return False


async def run(xmpp, args, actions):
    await wait_until(xmpp, xmpp.session_started.is_set, args.wait, 'session_start')
    if not args.no_roster:
        await fetch_roster(xmpp, args.wait)
    if not args.no_presence:
        xmpp.send_presence()
    emit('ready', jid=str(xmpp.boundjid))

    for i, action in enumerate(actions):
        do = action.get('do')
        timeout = float(action.get('timeout', args.wait))
        what = f'#{i} {do}'
        if do == 'send':
            xmpp.send_message(mto=action['to'], mbody=action.get('body'), mtype=action.get('type', 'chat'))
            emit('sent', to=action['to'], body=action.get('body'))
        elif do == 'wait_messages':
            count = int(action.get('count', 1))
            await wait_until(xmpp, lambda: len(xmpp.messages) >= count, timeout, f'{what} ({count} messages)')
        elif do == 'wait_presence':
            frm, ptype = action.get('from'), action.get('type', 'available')
            await wait_until(xmpp, lambda: any(matches(p['from'], frm) and p['type'] == ptype for p in xmpp.presences),
                             timeout, f'{what} ({ptype} from {frm})')
        elif do == 'presence':
            kwargs = {}
            if action.get('to'):
                kwargs['pto'] = action['to']
            if action.get('type'):
                kwargs['ptype'] = action['type']
            xmpp.send_presence(**kwargs)
        elif do == 'get_roster':
            await fetch_roster(xmpp, timeout, bool(action.get('full')))
        elif do in ('add_contact', 'wait_subscription'):
            jid = action['jid']
            until = action.get('until', ['to', 'both'] if do == 'add_contact' else ['both'])
            if do == 'add_contact':
                try:
                    await xmpp.update_roster(jid, name=action.get('name', ''), timeout=timeout)
                except IqError as e:
                    emit('roster_set_failed', jid=jid, error=e.iq['error']['condition'])
                except IqTimeout:
                    emit('roster_set_failed', jid=jid, error='timeout')
                xmpp.send_presence_subscription(pto=jid, ptype='subscribe')
            await wait_until(xmpp, lambda: xmpp.roster_state(jid) in until, timeout, f'{what} ({jid} in {until})')
            emit('subscribed', jid=jid, subscription=xmpp.roster_state(jid))
        elif do == 'sleep':
            await asyncio.sleep(float(action.get('seconds', 1)))
        elif do == 'disconnect':
            xmpp.disconnect(wait=min(timeout, 5))
            await wait_until(xmpp, xmpp.gone.is_set, timeout, 'disconnect')
        elif do == 'wait_disconnect':
            await wait_until(xmpp, xmpp.gone.is_set, timeout, 'disconnect')
        elif do == 'die':
            emit('dying', how='SIGKILL')
            os.kill(os.getpid(), signal.SIGKILL)
        elif do == 'freeze':
            emit('freezing', seconds=float(action.get('seconds', 60)))
            time.sleep(float(action.get('seconds', 60)))  # deliberately blocks the loop: no reads, no writes
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            emit('error', error=f'unknown action {do!r}')
            finish(EXIT_ERROR)

    if not xmpp.is_disconnected:
        xmpp.disconnect(wait=2)
        await wait_until(xmpp, xmpp.gone.is_set, args.wait, 'disconnect')
    emit('done')
    finish(EXIT_OK)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--jid', required=True)
    parser.add_argument('--password', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--wait', type=float, default=10.0, help='default bound of every wait, in seconds')
    parser.add_argument('--no-roster', action='store_true', help='do not fetch the roster at session start')
    parser.add_argument('--no-presence', action='store_true', help='do not send initial presence at session start')
    parser.add_argument('--verbose', action='store_true', help='echo the stream log to stderr')
    parser.add_argument('actions', nargs='?', help='JSON list of actions (default: read from stdin)')
    args = parser.parse_args()

    try:
        actions = json.loads(args.actions if args.actions is not None else sys.stdin.read() or '[]')
        if not isinstance(actions, list) or not all(isinstance(a, dict) and 'do' in a for a in actions):
            raise ValueError('actions must be a JSON list of objects with a "do" key')
        unknown = [a['do'] for a in actions if a['do'] not in ACTIONS]
        if unknown:
            raise ValueError(f'unknown actions {unknown}')
    except ValueError as e:
        emit('error', error=f'bad actions: {e}')
        finish(EXIT_ERROR)

    stream_log = StreamLog(args.verbose)
    root = logging.getLogger('slixmpp')
    root.setLevel(logging.DEBUG)
    root.addHandler(stream_log)
    root.propagate = False

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def on_error(_loop, context):
        exc = context.get('exception')
        emit('error', error=str(exc) if exc else context.get('message'))

    loop.set_exception_handler(on_error)
    xmpp = Driver(args, stream_log)
    xmpp.loop = loop
    xmpp.connect((args.host, args.port))  # an address: no DNS; STARTTLS is forced by default
    try:
        loop.run_until_complete(run(xmpp, args, actions))
    except Exception as e:  # noqa: BLE001 - whatever went wrong, say so on stdout and fail
        emit('error', error=f'{type(e).__name__}: {e}')
        finish(EXIT_ERROR)
    finish(EXIT_OK)


if __name__ == '__main__':
    main()
