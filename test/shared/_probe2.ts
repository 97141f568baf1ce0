const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B2 = /^[A-Za-z0-9+/]*={0,2}$/;
for (const n of [1<<16, 1<<18, 1<<20, 1<<21, 1<<22, 1<<23, 1<<24, 1<<25]) {
  const s = Buffer.alloc(n * 3 / 4, 7).toString("base64");
  let r1: unknown; try { r1 = BASE64.test(s); } catch (e) { r1 = (e as Error).message; }
  let t = performance.now(); const r2 = B2.test(s); const dt = performance.now() - t;
  console.log(n, r1, r2, dt.toFixed(2));
}
