// The Next.js app that the Next tests build and start twice: LOCKSTEP_NEXT_HANDLER is the
// bundled `lockstep/next` handler (absolute path).
export default {
  cacheComponents: true,
  partialPrefetching: true,
  cacheHandlers: { remote: process.env.LOCKSTEP_NEXT_HANDLER },
  typescript: { ignoreBuildErrors: true },
  images: { unoptimized: true }
}
