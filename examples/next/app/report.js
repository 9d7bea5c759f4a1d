import { cacheLife, cacheTag } from "next/cache"

// one render per minute for the whole fleet, whatever the number of `next start` processes
export async function report() {
  "use cache: remote"
  cacheLife({ revalidate: 60, expire: 3600 })
  cacheTag("report")
  const res = await fetch("https://api.example.com/report") // the slow part
  return res.json()
}
