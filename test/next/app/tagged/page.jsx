import { connection } from "next/server"
import { Suspense } from "react"
import { tagged } from "../report.js"

async function Tagged() {
  await connection()
  const { run } = await tagged()
  return <p id="run">run={run};</p>
}

export default function Page() {
  return (
    <Suspense fallback={null}>
      <Tagged />
    </Suspense>
  )
}
