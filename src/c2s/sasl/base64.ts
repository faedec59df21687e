/** Canonical base64 (RFC 4648 §4): the alphabet in groups of four, the last group padded with "=" as needed. */
const CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The data of a SASL element (RFC 6120 §6.4.2), or undefined when its text is not canonical base64: the
 * caller answers <incorrect-encoding/>. Node's decoder takes anything (whitespace, missing padding, "=" in
 * the middle, stray characters) and quietly drops what it cannot read; RFC 4648 §3.3 and §3.5 ask a receiver
 * to reject those, and a peer that sends them is broken or probing. "=" alone is a response that is present
 * and empty (RFC 6120 §6.4.2), and empty text is the encoding of no data.
 */
export function decodeSaslBase64(text: string): Buffer | undefined {
  if (text === '=' || text === '') return Buffer.alloc(0);
  if (text.length % 4 !== 0 || !CANONICAL.test(text)) return undefined;
  const data = Buffer.from(text, 'base64');
  // The bits the padding leaves over must be zero (§3.5): "QR==" decodes like "QQ==" but is not its encoding.
  return data.toString('base64') === text ? data : undefined;
}
