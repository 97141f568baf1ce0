const raw = new Uint8Array(2960); for (let i = 0, x = 2463534242; i < raw.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; raw[i] = x & 0xff; }
const s = Buffer.from(raw).toString("base64");
const big = Buffer.alloc(200000, 5).toString("base64");
const time = (name: string, f: (x: string) => unknown) => { for (const [lbl, str, n] of [["4k", s, 20000], ["266k", big, 300]] as const) { for (let i = 0; i < 200; i++) f(str); const t = performance.now(); for (let i = 0; i < n; i++) f(str); console.log(name.padEnd(24), lbl, ((performance.now() - t) / n * 1000).toFixed(2), "us", f(str)); } };
const R1 = /^[A-Za-z0-9+/]*={0,2}$/;
const R2 = /[^A-Za-z0-9+/]/;
const TABLE = new Uint8Array(128); for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") TABLE[c.charCodeAt(0)] = 1;
const loop = (x: string) => { const n = x.length; if (n % 4) return false; let end = n; if (end && x.charCodeAt(end-1) === 61) { end--; if (x.charCodeAt(end-1) === 61) end--; } for (let i = 0; i < end; i++) { const c = x.charCodeAt(i); if (c > 127 || TABLE[c] === 0) return false; } return true; };
const rt = (x: string) => Buffer.from(x, "base64").toString("base64") === x;
const bl = (x: string) => x.length % 4 === 0 && Buffer.byteLength(x, "base64") === (x.length/4)*3 - (x.endsWith("==") ? 2 : x.endsWith("=") ? 1 : 0);
for (let k = 0; k < 2; k++) {
time("regex anchored", (x) => R1.test(x));
time("regex negated", (x) => { const e = x.length - (x.endsWith("==") ? 2 : x.endsWith("=") ? 1 : 0); return !R2.test(e === x.length ? x : x.slice(0, e)); });
time("charCode loop", loop);
time("buffer roundtrip", rt);
}
