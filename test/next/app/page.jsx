import { connection } from "next/server"
import { Suspense } from "react"
import { report } from "./report.js"

async function Report() {
  await connection()
  const { run } = await report()
  return <p id="run">run={run};</p>
}

export default function Page() {
  return (
    <Suspense fallback={null}>
      <Report />
    </Suspense>
  )
}
