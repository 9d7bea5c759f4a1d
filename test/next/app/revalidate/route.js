import { revalidateTag } from "next/cache"

export async function POST() {
  revalidateTag("tagged", "max")
  return Response.json({ revalidated: true })
}
