// @xmpp/jid 0.14 ships no types (the @types package describes 1.x); this is the part Vigil uses.
declare module '@xmpp/jid' {
  export class JID {
    constructor(local: string | null | undefined, domain: string, resource?: string | null);
    local: string;
    domain: string;
    resource: string;
    toString(unescape?: boolean): string;
    bare(): JID;
    equals(other: JID): boolean;
  }
  export function jid(text: string): JID;
  export function jid(local: string | null, domain: string, resource?: string | null): JID;
  export function parse(text: string): JID;
}
