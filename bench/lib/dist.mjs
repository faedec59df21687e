// Benchmarks run the compiled server (dist/), as production does; `npm run bench` builds it first.
export async function load(path) {
  try {
    return await import(new URL(`../../dist/src/${path}`, import.meta.url).href);
  } catch (err) {
    console.error(`cannot load dist/src/${path} (run: npm run build): ${err.message}`);
    process.exit(2);
  }
}
