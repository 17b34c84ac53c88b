package api

import "github.com/gofiber/fiber/v2"

// privacyRoutes mounts the routes of a citizen's export and deletion of their personal data.
func (s *Server) privacyRoutes(app *fiber.App, v1 fiber.Router) {}
