import { revalidateTag } from "next/cache"

// POST /revalidate: every process serves the report stale once, while one of them re-renders it
export async function POST() {
  revalidateTag("report", "max")
  return Response.json({ revalidated: true })
}
