import { connection } from "next/server"
import { Suspense } from "react"
import { report } from "./report.js"

async function Report() {
  await connection()
  const { total } = await report()
  return <p>Total: {total}</p>
}

export default function Page() {
  return (
    <Suspense fallback={<p>Loading…</p>}>
      <Report />
    </Suspense>
  )
}
