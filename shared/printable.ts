// Text that came from the store or from a node, printed for people: a record must not be able to
// drive the terminal (move the cursor, retitle it, write the clipboard with OSC 52, hide lines with
// \r) nor reorder what is shown (bidi overrides). Such characters are shown as \u{...}. Pure.

/** C0 but tab and newline, DEL, C1 (0x9b is a one-byte CSI), and the bidi controls. */
const CONTROL = /[\0-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const visible = (c: string): string => `\\u{${c.codePointAt(0)!.toString(16)}}`;

/** Multi-line text (run output): tab and newline kept, every other control character made visible. */
export const printableText = (text: string): string => text.replace(CONTROL, visible);

/** One line or table cell (host names, facts, reasons): newline and tab made visible too. */
export const printableLine = (text: string): string => printableText(text).replace(/[\t\n]/g, visible);
